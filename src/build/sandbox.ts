/**
 * Where buildah runs: as root of a fresh user namespace (no host privilege), and with RUN steps in a network
 * namespace of their own when the build may not reach the network. Every child runs in its own process group, and
 * ending a build kills every process in the build's namespaces, so nothing outlives a cancel or a timeout.
 *
 * How the user namespace is made (measured on Debian 12, util-linux 2.38, buildah 1.28):
 * - A holder process (`unshare --user cat`, reading a pipe from us: it ends when we do) creates the namespace; the
 *   builder, root of the initial namespace, writes its maps: ids 0–65535 inside = host ids 100000–165535. buildah
 *   needs the whole range (a single-id map fails with "setting supplemental groups"), and since root writes the
 *   maps itself, setgroups stays allowed. `newuidmap` would refuse here: it wants an /etc/subuid entry.
 * - buildah then runs through `nsenter --user=/proc/H/ns/user --mount=… --setuid=0 --setgid=0`: uid 0 inside, host
 *   uid 100000 outside, capabilities only over its own namespaces — what a pod with `hostUsers: false` gets. The
 *   storage and work directories it writes are handed to host uid 100000 first.
 * - The holder has a mount namespace too, like a pod's own filesystem: buildah, being root there, keeps state in
 *   root's places (/var/cache/containers for short-name aliases, /var/lib/containers/cache for which blobs a registry
 *   has), which on the host belong to the real root. A tmpfs over /var/cache and the app's own state directory bound
 *   over /var/lib/containers give it those, per build and per app. (Telling buildah it is rootless instead breaks
 *   RUN steps: its chroot child loses HOME and fails with "cannot determine user's homedir".)
 * - buildah refuses `--network none` with chroot isolation ("cannot set --network other than host"), and OCI
 *   isolation needs cgroup controllers a nested builder does not have. So a RUN step's network is cut with a network
 *   namespace around `buildah bud` (a second holder, `unshare --net cat`, owned by the user namespace: only a loopback
 *   that is down). The bases a Dockerfile names are pulled before, outside that namespace, and pushes happen after.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** The host ids a build's user namespace maps to: 0–65535 inside. */
export const SUBID_BASE = 100_000;
export const SUBID_COUNT = 65_536;

/**
 * Whether to make a user namespace by default: when this process is root of the initial user namespace (it can
 * write the maps); a process already in a user namespace (a pod with `hostUsers: false`) is the unprivileged root.
 */
export function defaultUserNamespace(): boolean {
  try {
    return process.geteuid?.() === 0 && /^\s*0\s+0\s+4294967295\s*$/.test(readFileSync('/proc/self/uid_map', 'utf8'));
  } catch {
    return false;
  }
}

export interface Sandbox {
  /** The host uid/gid that is root inside (files buildah writes must belong to it); undefined: ours. */
  readonly owner: { uid: number; gid: number } | undefined;
  /** The command line that runs `cmd` inside the sandbox; `network: false` puts it in the network-less namespace. */
  wrap(cmd: string, args: string[], network: boolean): { cmd: string; args: string[] };
  /** Kills every process in the sandbox's namespaces (not the holders). */
  killAll(): void;
  /** Kills everything, holders included. */
  close(): Promise<void>;
}

interface Holder {
  child: ChildProcess;
  pid: number;
}

async function startHolder(cmd: string, args: string[], differsIn: 'user' | 'net'): Promise<Holder> {
  const child = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  child.on('error', () => undefined);
  const mine = nsOf(process.pid, differsIn);
  for (let i = 0; i < 500; i++) {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) break;
    const theirs = nsOf(child.pid, differsIn);
    if (theirs && theirs !== mine) return { child, pid: child.pid };
    await sleep(5);
  }
  child.kill('SIGKILL');
  throw new Error(`could not create a ${differsIn} namespace with ${cmd}: ${stderr.trim() || 'it did not start'}`);
}

function stopHolder(h: Holder | undefined): void {
  if (!h) return;
  h.child.stdin?.end();
  try {
    process.kill(h.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function nsOf(pid: number, ns: 'user' | 'net'): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/${ns}`);
  } catch {
    return undefined;
  }
}

/** Gives buildah, root inside, root's state directories of its own (see the top of this file). */
async function mountState(pid: number, stateDir: string | undefined): Promise<void> {
  const script =
    'mount -t tmpfs -o mode=0755 flui-cache /var/cache && ' +
    'if [ -n "$1" ] && [ -d /var/lib/containers ]; then mount --bind "$1" /var/lib/containers; fi';
  const child = spawn(
    'nsenter',
    [
      `--user=/proc/${pid}/ns/user`,
      `--mount=/proc/${pid}/ns/mnt`,
      '--setuid=0',
      '--setgid=0',
      '--',
      'sh',
      '-c',
      script,
      'sh',
      stateDir ?? '',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => {
    child.on('close', resolve);
    child.on('error', () => resolve(-1));
  });
  if (code !== 0) throw new Error(`could not prepare the build's mount namespace: ${stderr.trim()}`);
}

/**
 * The prefix that ties a command to the builder's life. A builder killed outright (SIGKILL, OOM) runs no cleanup, and
 * its buildah would go on building and pushing beside the builder that takes the build over, in the same app cache.
 * `setpriv --pdeathsig KILL` has the kernel kill the command when the builder dies. It must come after nsenter's
 * `--setuid`, since a change of credentials clears the death signal. Inside a user namespace, where we are root, the
 * command also gets a PID namespace of its own (`unshare --pid --fork --kill-child`): when its first process dies,
 * the kernel kills every process in it, so RUN steps that left the process group go too.
 */
function outlivesNoBuilder(ownPidNamespace: boolean): string[] {
  return [
    'setpriv',
    '--pdeathsig',
    'KILL',
    '--',
    ...(ownPidNamespace ? ['unshare', '--pid', '--fork', '--kill-child=SIGKILL', '--'] : []),
  ];
}

/** The sandbox for one build. `isolateNetwork`: RUN steps get no network. */
export async function createSandbox(opts: {
  userNamespace: boolean;
  isolateNetwork: boolean;
  /** Bound over /var/lib/containers inside (buildah's state as root: its blob info cache), owned by the sandbox root. */
  stateDir?: string;
}): Promise<Sandbox> {
  let user: Holder | undefined;
  let net: Holder | undefined;
  try {
    if (opts.userNamespace) {
      user = await startHolder('unshare', ['--user', '--mount', '--propagation', 'private', '--', 'cat'], 'user');
      const map = `0 ${SUBID_BASE} ${SUBID_COUNT}\n`;
      writeFileSync(`/proc/${user.pid}/uid_map`, map);
      writeFileSync(`/proc/${user.pid}/gid_map`, map);
      await mountState(user.pid, opts.stateDir);
    }
    if (opts.isolateNetwork) {
      net = user
        ? await startHolder(
            'nsenter',
            [`--user=/proc/${user.pid}/ns/user`, '--setuid=0', '--setgid=0', '--', 'unshare', '--net', '--', 'cat'],
            'net',
          )
        : await startHolder('unshare', ['--net', '--', 'cat'], 'net');
    }
  } catch (err) {
    stopHolder(net);
    stopHolder(user);
    throw err;
  }
  const userNs = user && nsOf(user.pid, 'user');
  const netNs = net && nsOf(net.pid, 'net');
  const holders = new Set([user?.pid, net?.pid]);
  const killAll = () => {
    if (!userNs && !netNs) return;
    for (const entry of readdirSync('/proc')) {
      const pid = Number(entry);
      if (!Number.isInteger(pid) || holders.has(pid) || pid === process.pid) continue;
      if ((userNs && nsOf(pid, 'user') === userNs) || (netNs && nsOf(pid, 'net') === netNs)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
    }
  };
  return {
    owner: user ? { uid: SUBID_BASE, gid: SUBID_BASE } : undefined,
    wrap(cmd, args, network) {
      const enter: string[] = [];
      if (user) enter.push(`--user=/proc/${user.pid}/ns/user`, `--mount=/proc/${user.pid}/ns/mnt`);
      if (net && !network) enter.push(`--net=/proc/${net.pid}/ns/net`);
      const [tied, ...rest] = [...outlivesNoBuilder(user !== undefined), cmd, ...args];
      if (!enter.length) return { cmd: tied!, args: rest };
      if (user) enter.push('--setuid=0', '--setgid=0');
      return { cmd: 'nsenter', args: [...enter, '--', tied!, ...rest] };
    },
    killAll,
    async close() {
      killAll();
      stopHolder(net);
      stopHolder(user);
    },
  };
}
