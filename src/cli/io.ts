/** Where a command writes: injected, so tests call a command's run function and read what it printed. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** stdout is a terminal: live progress lines are drawn only then. */
  isTTY: boolean;
}

export const processIo: Io = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
  isTTY: Boolean(process.stdout.isTTY),
};
