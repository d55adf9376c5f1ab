/**
 * The tally every emulator's contract check keeps: which operations it checked, how many responses, and each
 * violation as a sentence (also handed to `onViolation` as it is found, which the launchers print). Each emulator's
 * checker extends it with where its schemas come from.
 */

/** What the checkers need of a compiled JSON Schema (Ajv's `ValidateFunction` is one). */
export interface Validate {
  (body: unknown): boolean;
  errors?: { instancePath?: string; message?: string }[] | null;
}

export class ContractTally {
  /** Operations (`METHOD <operation>`) and webhooks (`WEBHOOK name`) checked at least once. */
  readonly operations = new Set<string>();
  responses = 0;
  readonly violations: string[] = [];
  /** Called with each violation as it is found (the CLI prints them). */
  onViolation: (violation: string) => void = () => undefined;

  /** `{ operations, responses, violations }` as numbers and a copy of the list. */
  summary(): { operations: number; responses: number; violations: string[] } {
    return { operations: this.operations.size, responses: this.responses, violations: [...this.violations] };
  }

  /** Counts one checked response (or webhook) of `op`. */
  protected checked(op: string): void {
    this.operations.add(op);
    this.responses++;
  }

  protected violation(text: string): void {
    this.violations.push(text);
    this.onViolation(text);
  }

  /** A violation, labelled `label`, naming the first place where `body` breaks the schema `validate` checks. */
  protected report(validate: Validate, body: unknown, label: string): void {
    if (!validate(body)) {
      const e = validate.errors?.[0];
      this.violation(`${label}: body${e?.instancePath ?? ''} ${e?.message ?? 'is invalid'}`);
    }
  }
}
