// The desktop shell's abilities, with browser fallbacks. This is the only module that imports
// @tauri-apps/*; components ask this module, never Tauri.
import { convertFileSrc, invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';
import { ShellError } from './errors';

export type Transport = 'desktop' | 'browser';

/** A file the desktop shell holds for us: the page never sees its path or bytes. */
export interface FileHandle {
  handle: string;
  name: string;
  size: number;
}

/** What the person chose to add: a handle (desktop) or a File (browser). */
export type EvidenceSource = { kind: 'handle'; file: FileHandle } | { kind: 'file'; file: File };

export function detectTransport(win: object | undefined = typeof window === 'undefined' ? undefined : window): Transport {
  return win !== undefined && '__TAURI_INTERNALS__' in win ? 'desktop' : 'browser';
}

/**
 * The API's base URL. Desktop: the app's own URI scheme (`casewire://localhost/`, or
 * `http://casewire.localhost/` on Windows). Browser: the page's own origin.
 */
export function baseUrlFor(
  transport: Transport,
  origin: string,
  schemeUrl: () => string = () => convertFileSrc('', 'casewire'),
): string {
  const url = transport === 'desktop' ? schemeUrl() : `${origin}/`;
  return url.endsWith('/') ? url : `${url}/`;
}

export const transport: Transport = detectTransport();

export function apiBaseUrl(): string {
  return baseUrlFor(transport, typeof location === 'undefined' ? 'http://localhost' : location.origin);
}

export const isDesktop = transport === 'desktop';

/** Opens a file picker. Desktop: the OS dialog via the shell. Browser: an `<input type=file>`. */
export async function pickEvidenceFiles(): Promise<EvidenceSource[]> {
  if (isDesktop) {
    const files = await invoke<FileHandle[]>('pick_evidence_files');
    return files.map((file) => ({ kind: 'handle', file }));
  }
  return new Promise((resolve) => {
    const input = document.createElement('input');
    input.type = 'file';
    input.multiple = true;
    input.hidden = true;
    const done = (files: EvidenceSource[]) => {
      input.remove();
      resolve(files);
    };
    input.addEventListener('change', () => done(Array.from(input.files ?? []).map((file) => ({ kind: 'file', file }))));
    input.addEventListener('cancel', () => done([]));
    document.body.append(input);
    input.click();
  });
}

/**
 * Files dropped on the window. Desktop: the shell's `evidence-dropped` event (the webview does
 * not hand dropped files to the page). Browser: nothing here; the drop zone reads the DOM event.
 * Returns the unsubscribe function.
 */
export function onFilesDropped(handler: (files: EvidenceSource[]) => void): () => void {
  if (!isDesktop) return () => {};
  let unlisten: (() => void) | null = null;
  let cancelled = false;
  void listen<FileHandle[]>('evidence-dropped', (event) => {
    handler(event.payload.map((file) => ({ kind: 'handle', file })));
  }).then((fn) => {
    if (cancelled) fn();
    else unlisten = fn;
  });
  return () => {
    cancelled = true;
    unlisten?.();
  };
}

/** Progress of a desktop upload by handle (`upload-progress` events). */
export function onUploadProgress(handle: string, handler: (bytes: number, total: number) => void): () => void {
  if (!isDesktop) return () => {};
  let unlisten: (() => void) | null = null;
  let cancelled = false;
  void listen<{ handle: string; bytes: number; total: number }>('upload-progress', (event) => {
    if (event.payload.handle === handle) handler(event.payload.bytes, event.payload.total);
  }).then((fn) => {
    if (cancelled) fn();
    else unlisten = fn;
  });
  return () => {
    cancelled = true;
    unlisten?.();
  };
}

/** A path the shell holds for us after its save dialog: the page never sees the path. */
export interface SaveTarget {
  handle: string;
  /** The file name the person chose (no folder). */
  name: string;
}

/** Desktop: asks where to save; a target for `POST /api/evidence/{id}/save` or `save_text`, or null if cancelled. */
export async function pickSavePath(suggestedName: string): Promise<SaveTarget | null> {
  const answer = await invoke<{ handle: string; name?: string } | null>('pick_save_path', { suggestedName });
  return answer ? { handle: answer.handle, name: answer.name ?? suggestedName } : null;
}

/**
 * Saves text the page made (an export). Desktop: the shell's save dialog, then `save_text`
 * writes it (WebKitGTK does not download blob links). Browser: a blob link. Resolves with the
 * file name, or null when the person cancelled the dialog; rejects with a ShellError.
 */
export async function saveText(text: string, suggestedName: string, type = 'application/json'): Promise<string | null> {
  if (!isDesktop) {
    saveBlob(new Blob([text], { type }), suggestedName);
    return suggestedName;
  }
  let target: SaveTarget | null;
  try {
    target = await pickSavePath(suggestedName);
    if (target === null) return null;
    await invoke('save_text', { handle: target.handle, text });
  } catch (error) {
    throw new ShellError(error);
  }
  return target.name;
}

/** Browser: hands a blob to the browser's own download. */
export function saveBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.rel = 'noopener';
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * Copies text. The async clipboard first; where the webview lacks it or refuses, a hidden
 * textarea and `execCommand('copy')` (still what WebKitGTK supports). False if both fail.
 */
export async function copyText(text: string): Promise<boolean> {
  try {
    if (navigator.clipboard?.writeText) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // Fall through to the textarea.
  }
  return copyWithTextarea(text);
}

function copyWithTextarea(text: string): boolean {
  const previous = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.setAttribute('aria-hidden', 'true');
  area.tabIndex = -1;
  area.className = 'clipboard-helper';
  document.body.append(area);
  area.select();
  area.setSelectionRange(0, text.length);
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  } finally {
    area.remove();
    previous?.focus();
  }
  return ok;
}
