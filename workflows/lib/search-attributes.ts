// Search attributes that make procedures findable in the Temporal UI ("all running failovers of
// incident X"). The sandbox registers them (sandbox/temporal.ts); a cluster needs them registered once.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const searchAttributes = {
  procedure: defineSearchAttributeKey('MimirProcedure', SearchAttributeType.KEYWORD),
  site: defineSearchAttributeKey('MimirSite', SearchAttributeType.KEYWORD),
  incidentId: defineSearchAttributeKey('MimirIncidentId', SearchAttributeType.KEYWORD),
  severity: defineSearchAttributeKey('MimirSeverity', SearchAttributeType.KEYWORD),
  phase: defineSearchAttributeKey('MimirPhase', SearchAttributeType.KEYWORD),
};
