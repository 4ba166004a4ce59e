// anvil, the EVM node of the anchoring tests, for the browser tests (ui/e2e) and the window
// tests (tests/desktop), which are separate npm packages: plain Node, no dependencies. The
// binary is foundry's, cached by scripts/bootstrap; it runs offline.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from './wait.mjs';

export const ANVIL = process.env.ANVIL_BIN ?? join(homedir(), '.cache/casewire/bin/anvil');

/**
 * anvil on 127.0.0.1:`port` as chain 31337, writing under a temporary HOME. `onChild` is given
 * the process first (to kill it if the test ends early, to read its output; otherwise its
 * output is drained). Resolves once it answers JSON-RPC.
 */
export async function startAnvil(port, onChild = (child) => { child.stdout.resume(); child.stderr.resume(); }) {
  const home = await mkdtemp(join(tmpdir(), 'casewire-anvil-'));
  const child = spawn(ANVIL, ['--host', '127.0.0.1', '--port', String(port), '--chain-id', '31337'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HOME: home },
  });
  onChild(child);
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const url = `http://127.0.0.1:${port}`;
  const rpc = async (method, params = []) => {
    const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
    const answer = await res.json();
    if (answer.error) throw new Error(`anvil ${method}: ${JSON.stringify(answer.error)}`);
    return answer.result;
  };
  await until('anvil to answer', async () => { try { return Boolean(await rpc('eth_chainId')); } catch { return false; } }, 20_000);
  return {
    url,
    rpc,
    async stop() {
      child.kill('SIGKILL');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      await rm(home, { recursive: true, force: true });
    },
  };
}
