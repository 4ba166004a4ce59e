#!/usr/bin/env node
// The update manifest (latest.json) the desktop app's updater reads, made from the signed
// packages of one release: every `<package>.sig` in the folders given becomes the entry of its
// platform, `{os}-{arch}-{installer}` (what an app installed from that kind of package asks
// for first) and, for the package a platform's other installs fall back on, `{os}-{arch}`.
// tauri-action's own latest.json names only one Linux package; an app installed from the .deb
// or the .rpm would be offered the AppImage and refuse it.
//
// Usage: scripts/updater-manifest.mjs --version 0.2.0 --url-base https://…/download/v0.2.0/
//          [--notes TEXT] [--pub-date RFC3339] FOLDER… > latest.json
// Plain Node, no dependencies (the release workflow and the package test both run it).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** What a signed package is for, from its file name; `null` for files that are not packages. */
export function platformOf(name) {
  const arch = /aarch64|arm64/.test(name) ? 'aarch64' : /x86_64|amd64|x64/.test(name) ? 'x86_64' : null;
  if (!arch) return null;
  const kinds = [
    [/\.deb$/, 'linux', 'deb', false],
    [/\.rpm$/, 'linux', 'rpm', false],
    [/\.AppImage(\.tar\.gz)?$/, 'linux', 'appimage', true],
    [/\.msi(\.zip)?$/, 'windows', 'msi', false],
    [/-setup\.exe(\.zip)?$/, 'windows', 'nsis', true],
    [/\.app\.tar\.gz$/, 'darwin', 'app', true],
  ];
  for (const [pattern, os, installer, fallback] of kinds) {
    if (pattern.test(name)) return { os, arch, installer, fallback };
  }
  return null;
}

/** The manifest for the signed packages in `folders`, downloaded from `urlBase`. */
export function manifest({ version, urlBase, notes, pubDate }, folders) {
  const platforms = {};
  for (const folder of folders) {
    for (const file of readdirSync(folder).sort()) {
      if (!file.endsWith('.sig')) continue;
      const pkg = file.slice(0, -'.sig'.length);
      const platform = platformOf(pkg);
      if (!platform) continue;
      const entry = {
        signature: readFileSync(join(folder, file), 'utf8').trim(),
        url: new URL(encodeURIComponent(pkg), urlBase).href,
      };
      const { os, arch, installer, fallback } = platform;
      platforms[`${os}-${arch}-${installer}`] = entry;
      if (fallback) platforms[`${os}-${arch}`] = entry;
    }
  }
  if (Object.keys(platforms).length === 0) throw new Error(`no signed package (*.sig beside it) in ${folders.join(', ')}`);
  return { version, notes: notes ?? '', pub_date: pubDate ?? new Date().toISOString(), platforms };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const options = {};
  const folders = [];
  while (args.length) {
    const arg = args.shift();
    const take = () => {
      const value = args.shift();
      if (value === undefined) throw new Error(`${arg} needs a value`);
      return value;
    };
    if (arg === '--version') options.version = take();
    else if (arg === '--url-base') options.urlBase = take();
    else if (arg === '--notes') options.notes = take();
    else if (arg === '--pub-date') options.pubDate = take();
    else folders.push(arg);
  }
  if (!options.version || !options.urlBase || folders.length === 0) {
    console.error('usage: scripts/updater-manifest.mjs --version V --url-base URL/ [--notes TEXT] [--pub-date DATE] FOLDER…');
    process.exit(2);
  }
  process.stdout.write(`${JSON.stringify(manifest(options, folders), null, 2)}\n`);
}
