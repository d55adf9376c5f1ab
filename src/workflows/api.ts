/**
 * @deprecated The workflow's contract moved to `./contract.ts`; this re-export keeps imports from before the move
 * working (dev/, bench/ and tests outside the contract's area) until they are updated. Add nothing here.
 */
export * from './contract.ts';
