// Input validation for workflows: runs before the first side effect, and names the field and the fix.
import { ApplicationFailure } from '@temporalio/workflow';
import ms from 'ms';
import { z } from 'zod';

/** Parses a duration such as `90s`, `15m` or `1h` into milliseconds, or undefined if it is not one. */
export function durationMs(value: string): number | undefined {
  const n = ms(value as ms.StringValue);
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : undefined;
}

export const duration = z
  .string()
  .refine((v) => durationMs(v) !== undefined, { message: "must be a positive duration such as '90s', '15m' or '1h'" });

const name = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a lowercase name such as "primary"');

export const procedureInputBase = z.object({
  site: name,
  requestedBy: z.string().trim().min(1, 'must name the person starting the procedure'),
  incidentId: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be an incident id such as INC-1234')
    .optional(),
  severity: z.enum(['SEV-1', 'SEV-2', 'SEV-3', 'SEV-4']).optional(),
  approval: z.object({ escalateAfter: duration.optional(), deadline: duration.optional() }).strict().optional(),
});

const CIDR4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\/(3[0-2]|[12]?\d)$/;
const CIDR6 = /^[0-9a-fA-F:]+\/(12[0-8]|1[01]\d|\d?\d)$/;

/** The CIDRs of a comma-separated list (as the nginx ingress allow-list takes it) that are not CIDRs; empty when all are. */
export function badCidrs(value: string): string[] {
  const parts = value.split(',').map((p) => p.trim());
  return parts.filter((p) => !CIDR4.test(p) && !(p.includes(':') && CIDR6.test(p)));
}

/** An ingress allow-list: one or more CIDRs, comma-separated, such as 10.0.0.0/8. */
export const sourceRange = z
  .string()
  .refine((v) => badCidrs(v).length === 0, { message: "must be a comma-separated list of CIDRs such as '10.0.0.0/8'" });

/** A place in the evidence store: one to four relative path segments, never absolute, never `..`. */
export const EVIDENCE_PATH = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}(\/[A-Za-z0-9][A-Za-z0-9._-]{0,63}){0,3}$/;

/** Validates `input` against `schema`, or fails the workflow with a non-retryable `InvalidInputError`. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.infer<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : 'input'}: ${i.message}`);
  throw ApplicationFailure.create({
    type: 'InvalidInputError',
    nonRetryable: true,
    message: `invalid input: ${problems.join('; ')}`,
    details: [problems],
  });
}
