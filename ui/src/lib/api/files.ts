// Evidence files in and out. Desktop: by handle through the shell (files never pass through the
// page). Browser: multipart upload with XHR (for progress) and download as a blob.
import { api, baseUrl, call, failureOf, authHeader, newIdempotencyKey, rawFetch } from './client';
import { ApiFailure, ShellError } from '../errors';
import { isDesktop, onUploadProgress, pickSavePath, saveBlob, type EvidenceSource } from '../platform';
import type { Evidence } from './types';

export interface UploadFields {
  caseId: string;
  wallet: string;
  reporter: string;
  riskLevel?: string;
}

export function uploadEvidence(
  source: EvidenceSource,
  fields: UploadFields,
  onProgress: (bytes: number, total: number) => void,
): Promise<Evidence> {
  if (source.kind === 'handle') {
    const stop = onUploadProgress(source.file.handle, onProgress);
    const body = { handle: source.file.handle, ...fields };
    return call(api.POST('/api/evidence/local', { body }))
      .then((answer) => answer.evidence)
      .finally(stop);
  }
  const file = source.file;
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append('caseId', fields.caseId);
    form.append('wallet', fields.wallet);
    form.append('reporter', fields.reporter);
    if (fields.riskLevel) form.append('riskLevel', fields.riskLevel);
    form.append('evidenceFile', file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', new URL('api/evidence/upload', baseUrl));
    const auth = authHeader();
    if (auth) xhr.setRequestHeader('Authorization', auth);
    xhr.setRequestHeader('Idempotency-Key', newIdempotencyKey());
    xhr.upload.addEventListener('progress', (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size));
    xhr.addEventListener('error', () => reject(new ApiFailure('network', 0, null)));
    xhr.addEventListener('load', () => {
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = xhr.responseText;
      }
      if (xhr.status >= 200 && xhr.status < 300 && body && typeof body === 'object' && 'evidence' in body) {
        resolve((body as { evidence: Evidence }).evidence);
      } else {
        reject(failureOf(xhr.status, body));
      }
    });
    xhr.send(form);
  });
}

/** Saves an evidence file. Resolves with the saved file's name, or null when the person cancelled. */
export async function downloadEvidence(evidence: Evidence): Promise<string | null> {
  if (isDesktop) {
    let target;
    try {
      target = await pickSavePath(evidence.filename);
    } catch (error) {
      throw new ShellError(error);
    }
    if (target === null) return null;
    await call(api.POST('/api/evidence/{id}/save', { params: { path: { id: evidence.evidenceId } }, body: { handle: target.handle } }));
    return target.name;
  }
  const response = await rawFetch(`/api/evidence/${encodeURIComponent(evidence.evidenceId)}/download`);
  saveBlob(await response.blob(), evidence.filename);
  return evidence.filename;
}
