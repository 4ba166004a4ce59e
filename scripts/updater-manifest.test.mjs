// scripts/updater-manifest.mjs on the files of a whole release, as tauri-action names them
// (run by scripts/check-workflows).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manifest, platformOf } from './updater-manifest.mjs';

const RELEASE = [
  'Casewire_0.2.0_amd64.deb',
  'Casewire-0.2.0-1.x86_64.rpm',
  'Casewire_0.2.0_amd64.AppImage',
  'Casewire_0.2.0_x64_en-US.msi',
  'Casewire_0.2.0_x64-setup.exe',
  'Casewire_aarch64.app.tar.gz',
  'Casewire_x64.app.tar.gz',
];

function releaseFolder() {
  const dir = mkdtempSync(join(tmpdir(), 'casewire-release-'));
  for (const name of RELEASE) {
    writeFileSync(join(dir, name), 'package');
    writeFileSync(join(dir, `${name}.sig`), `signature of ${name}\n`);
  }
  // Not an updater package: no signature, not listed.
  writeFileSync(join(dir, 'Casewire_0.2.0_aarch64.dmg'), 'disk image');
  return dir;
}

test('every signed package of a release becomes the entry of its platform and installer', () => {
  const latest = manifest({ version: '0.2.0', urlBase: 'https://github.com/o/casewire/releases/download/v0.2.0/', notes: 'Notes', pubDate: '2026-12-01T09:00:00Z' }, [releaseFolder()]);
  assert.equal(latest.version, '0.2.0');
  assert.equal(latest.pub_date, '2026-12-01T09:00:00Z');
  assert.deepEqual(Object.keys(latest.platforms).sort(), [
    'darwin-aarch64', 'darwin-aarch64-app', 'darwin-x86_64', 'darwin-x86_64-app',
    'linux-x86_64', 'linux-x86_64-appimage', 'linux-x86_64-deb', 'linux-x86_64-rpm',
    'windows-x86_64', 'windows-x86_64-msi', 'windows-x86_64-nsis',
  ]);
  const deb = latest.platforms['linux-x86_64-deb'];
  assert.equal(deb.url, 'https://github.com/o/casewire/releases/download/v0.2.0/Casewire_0.2.0_amd64.deb');
  assert.equal(deb.signature, 'signature of Casewire_0.2.0_amd64.deb');
  // What an install the app cannot place falls back on: the self-contained package of each OS.
  assert.match(latest.platforms['linux-x86_64'].url, /\.AppImage$/);
  assert.match(latest.platforms['windows-x86_64'].url, /-setup\.exe$/);
  assert.match(latest.platforms['darwin-aarch64'].url, /aarch64\.app\.tar\.gz$/);
});

test('a name that is no updater package is no platform, and a folder without signatures is an error', () => {
  assert.equal(platformOf('Casewire_0.2.0_aarch64.dmg'), null);
  assert.equal(platformOf('notes.txt'), null);
  assert.deepEqual(platformOf('Casewire-0.2.0-1.aarch64.rpm'), { os: 'linux', arch: 'aarch64', installer: 'rpm', fallback: false });
  const empty = mkdtempSync(join(tmpdir(), 'casewire-release-'));
  assert.throws(() => manifest({ version: '0.2.0', urlBase: 'https://example.org/' }, [empty]), /no signed package/);
});
