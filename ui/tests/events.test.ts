import { describe, expect, it } from 'vitest';
import { eventLabel, eventSummary } from '../src/lib/i18n/en';

describe('timeline entries of an anchor', () => {
  it('names each move of an anchor, and any other system.info by its type', () => {
    expect(eventLabel('system.info', { action: 'anchor.requested' })).toBe('Anchoring asked for');
    expect(eventLabel('system.info', { action: 'anchor.reorganised' })).toBe('Anchor’s block left the chain');
    expect(eventLabel('system.info', { message: 'screens' })).toBe('System information');
    expect(eventLabel('system.info', { action: 'something.else' })).toBe('System information');
    expect(eventLabel('case.created', {})).toBe('Case opened');
  });

  it('says which files a move is about, by name, with the block when there is one', () => {
    const names = { a: 'statement.pdf', b: 'chat.txt', c: 'letter.txt', d: 'photo.jpg', e: 'notes.txt' };
    expect(eventSummary('system.info', { action: 'anchor.requested', evidenceId: 'a' }, names)).toBe('statement.pdf');
    expect(eventSummary('system.info', { action: 'anchor.included', evidenceIds: ['a', 'b'], blockNumber: 7 }, names)).toBe('statement.pdf, chat.txt · block 7');
    expect(eventSummary('system.info', { action: 'anchor.broadcast', evidenceIds: ['a', 'b', 'c', 'd', 'e'] }, names)).toBe('statement.pdf, chat.txt, letter.txt and 2 more');
    expect(eventSummary('system.info', { action: 'anchor.failed', evidenceIds: ['z'], message: 'reverted' }, names)).toBe('z · reverted');
  });

  it('says up to which event a timeline was anchored, and in which block', () => {
    expect(eventLabel('system.info', { action: 'anchor.case_head' })).toBe('Timeline anchored on chain');
    expect(eventSummary('system.info', { action: 'anchor.case_head', sequence: 12, blockNumber: 40 })).toBe('Up to event 12 · block 40');
    expect(eventSummary('system.info', { action: 'anchor.case_head' })).toBe('This timeline');
  });
});
