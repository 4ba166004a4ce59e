// Names for the generated schema's types, so screens do not spell out paths.
import type { components } from './schema';

type S = components['schemas'];

/** Every code the server's errors may carry. */
export type ServerErrorCode = S['ErrorCode'];
export type Case = S['Case'];
export type CaseStatus = S['CaseStatus'];
export type Evidence = S['Evidence'];
export type Anchor = S['Anchor'];
export type AnchorStatus = S['AnchorStatus'];
export type Verification = S['Verification'];
export type Prediction = S['Prediction'];
export type Feedback = S['Feedback'];
export type QueueStats = S['QueueStats'];
export type DeadLetter = S['DeadLetter'];
export type QueuedEvent = S['QueuedEvent'];
export type Priority = S['Priority'];
export type TimelineEntry = S['TimelineEntry'];
export type TimelineCheck = S['TimelineCheck'];
export type AnchoringView = S['AnchoringView'];
export type Delivery = S['Delivery'];
export type DeliveryState = S['DeliveryStage'];
export type Role = S['Role'];
export type SessionUser = S['User'];
export type LoginAnswer = S['LoginResponse'];
export type Setting = S['SettingView'];
export type SettingSource = S['Source'];
export type SyncState = S['SyncState'];
export type SyncStatus = S['SyncStatus'];
export type UserRecord = S['UserRecord'];
export type Preferences = S['Preferences'];
export type UpdateView = S['UpdateView'];
