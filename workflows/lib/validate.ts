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
