// Response shapes. The server's OpenAPI document describes paths, parameters and request
// bodies (src/api/schema.d.ts is generated from it) but not responses yet, so these are
// written from docs/protocol.md, docs/queue.md, docs/documents.md and server/domain/views.py.
import type { CaseSummary, Invitation, Opinion } from "./events";
import type { components } from "./schema";

export type Schemas = components["schemas"];
export type Role = "worker" | "clerk" | "expert" | "supervisor" | "admin" | "auditor";
export type TicketStatus = "waiting" | "called" | "in_service" | "completed" | "no_show" | "cancelled";
export type WarningLevel = "green" | "yellow" | "red";
export type CompletionResult = Schemas["Complete"]["result"];
export type Priority = NonNullable<Schemas["TakeTicket"]["priority"]>;

export interface DepartmentRef {
  id: number;
  code: string;
  name: string;
}

export interface UserWindow {
  id: number;
  name: string;
  centre_id: number;
  tidal: boolean;
  active: boolean;
  departments: DepartmentRef[];
}

export interface User {
  id: number;
  username: string;
  display_name: string;
  role: Role;
  active: boolean;
  extension_point_id: number | null;
  specialties: string[];
  windows: UserWindow[];
  departments: DepartmentRef[];
  /** In /api/me and the login answer (not in user lists). */
  two_factor?: TwoFactorStatus;
  /** In /api/me and the login answer: the service's time zone (IANA name), for clock times. */
  service_timezone?: string;
}

/** 两步验证: whether the account has it on, must have it, may have it (its role). */
export interface TwoFactorStatus {
  enrolled: boolean;
  required: boolean;
  available: boolean;
  recovery_codes_left?: number;
}

export interface TwoFactorEnrolment {
  secret: string;
  otpauth_uri: string;
  /** An SVG QR code as a data: URL. */
  qr_code: string;
  issuer: string;
  algorithm: string;
  digits: number;
  period: number;
}

export interface RecoveryCodes {
  recovery_codes: string[];
}

export interface LoginResult {
  token: string;
  expires_at: string;
  user: User;
}

export interface Window {
  id: number;
  name: string;
  centre_id: number;
  active: boolean;
  tidal: boolean;
  opened_at: string | null;
  closes_at: string | null;
  closed_at: string | null;
  opened_by_id: number | null;
  department_ids: number[];
}

export interface Org {
  departments: DepartmentRef[];
  centres: {
    id: number;
    name: string;
    level: "district" | "town";
    parent_id: number | null;
    extension_points: { id: number; name: string }[];
    windows: Window[];
  }[];
}

export interface Material {
  id: number;
  name: string;
  required: boolean;
  note: string;
}

export interface Item {
  id: number;
  code: string;
  name: string;
  initials: string;
  description: string;
  department_id: number;
  level: "district" | "town";
  active: boolean;
  materials: Material[];
}

/** In tickets, lists and events the ID number and phone come masked (`masked: true`); the
 * full record is one audited read, `GET /api/tickets/{id}/resident`, for the case's worker and clerk. */
export interface Resident {
  name: string;
  id_number?: string;
  phone?: string;
  note?: string;
  masked?: boolean;
}

export interface ResidentFull extends Resident {
  ticket_id: number;
  masked: false;
}

export interface Ticket {
  id: number;
  number: string;
  service_day: string;
  status: TicketStatus;
  centre_id: number;
  department_id: number;
  item_id: number;
  extension_point_id: number;
  worker_id: number;
  resident: Resident;
  priority: Priority | null;
  callback: boolean;
  taken_at: string;
  called_at: string | null;
  started_at: string | null;
  finished_at: string | null;
  window_id: number | null;
  clerk_id: number | null;
  recalls: number;
  transfers: number;
  result: CompletionResult | null;
  result_note: string | null;
  rating: { score: number; comment: string; at: string } | null;
  /** On take, read and transfer: the place in the queue while waiting. */
  position?: number | null;
  estimated_wait_s?: number | null;
}

export interface Queue {
  centre_id: number;
  department_id: number;
  windows_open: number;
  waiting: number;
  serving: number;
  longest_wait_s: number;
  warning_level: WarningLevel;
}

export interface Alert {
  id: number;
  kind: "wait_timeout" | "warning";
  level: "yellow" | "red";
  centre_id: number;
  department_id: number;
  ticket_id: number | null;
  message: string;
  detail: Record<string, unknown> | null;
  created_at: string;
  acknowledged_at: string | null;
  acknowledged_by_id: number | null;
}

export interface DashboardRow {
  department_id: number;
  code: string;
  name: string;
  waiting: number;
  serving: number;
  longest_wait_s: number;
  warning_level: WarningLevel;
  served_today: number;
  average_wait_s: number | null;
  average_handling_s: number | null;
  rating_average: number | null;
  ratings_today: number;
}

export interface Dashboard {
  at: string;
  service_open: boolean;
  departments: DashboardRow[];
  totals: { waiting: number; serving: number; served_today: number };
  tidal_windows: Window[];
  alerts: Alert[];
}

export type LinkGrade = "good" | "fair" | "poor";

/** GET /api/dashboard/links (server/domain/links.py): no personal data, roles only. */
export interface LinkWall {
  at: string;
  poor_now: {
    ticket_id: number;
    number: string;
    status: string;
    department: string;
    extension_point: string;
    extension_point_id: number;
    centre_id: number;
    participants: {
      role: "worker" | "clerk" | "expert";
      grade: LinkGrade;
      worst_grade: LinkGrade;
      poor_s: number;
      loss_pct: number | null;
      rtt_ms: number | null;
      bitrate_kbps: number | null;
    }[];
  }[];
  extension_points: {
    extension_point_id: number;
    name: string;
    centre_id: number;
    calls_today: number;
    poor_calls_today: number;
    poor_s_today: number;
  }[];
}

export type DocumentStatus = "provided" | "accepted" | "rejected";

export interface CaseDocument {
  id: number;
  ticket_id: number;
  material_id: number | null;
  material_name: string;
  source: "upload" | "capture";
  uploader_id: number;
  uploaded_at: string;
  content_type: string;
  size: number;
  width: number | null;
  height: number | null;
  page_count: number | null;
  sha256: string;
  status: DocumentStatus;
  review_reason: string | null;
  reviewed_by_id: number | null;
  reviewed_at: string | null;
  thumbnail_url?: string;
  urls?: { viewing: string; thumbnail: string; original: string };
  duplicate?: boolean;
}

export interface ChecklistLine {
  material_id: number | null;
  name: string;
  required: boolean;
  note: string;
  state: "missing" | DocumentStatus;
  state_name: string;
  document_ids: number[];
  reason: string | null;
}

export interface UploadProgress {
  upload_id: string;
  offset: number;
  size: number;
  chunk_bytes: number;
  expires_at?: string;
}

export interface Message {
  id: number;
  ticket_id: number;
  author_id: number;
  author_name: string;
  author_role: string;
  channel: "call" | "consultation";
  text: string;
  at: string;
}

export interface IceServers {
  ice_servers: RTCIceServer[];
  ice_transport_policy: RTCIceTransportPolicy;
  ttl_seconds: number;
}

/** One row of the audit trail (server/domain/audit.py `query`). */
export interface AuditEntry {
  id: number;
  seq: number;
  at: string;
  actor_id: number | null;
  actor: string;
  action: string;
  target_type: string;
  target_id: string;
  ip: string;
  detail: Record<string, unknown>;
  hash: string;
}

/** What verifying the audit hash chain found (server/domain/audit.py `Verdict.view`). */
export interface AuditVerdict {
  intact: boolean;
  rows: number;
  head: { seq: number; hash: string };
  anchors_checked: number;
  problem: { kind: "edited" | "deleted" | "reordered" | "truncated" | "anchor"; seq: number; id: number | null; message: string } | null;
  message: string;
}

export interface Health {
  status: string;
  database: string;
}

export type Presence = "online" | "busy" | "offline";

/** An expert of the pool as GET /api/experts lists them (server/domain/experts.py `search`). */
export interface PoolExpert {
  id: number;
  display_name: string;
  specialties: string[];
  departments: { id: number; name: string }[];
  available: boolean;
  parallel_consultations: boolean;
  presence: Presence;
  open_consultations: number;
  /** Available, online and not already in a consultation (unless they allow several). */
  free: boolean;
}

export interface ExpertSettings {
  id: number;
  available: boolean;
  parallel_consultations: boolean;
}

/** An invitation as the expert reads it: who asks, why, and the case. */
export type InvitationToMe = Invitation & { note: string; invited_by_name: string; case: CaseSummary };

export interface ConsultationCreated {
  id: number;
  ticket_id: number;
  note: string;
  created_at: string;
  invitations: Invitation[];
}

export type TimelineKind = "invited" | "accepted" | "declined" | "expired" | "joined" | "left" | "opinion";

export interface TimelineEntry {
  at: string;
  kind: TimelineKind;
  expert_id: number;
  expert_name: string;
  by_id?: number;
  by_name?: string;
  invitation_id?: number;
  response_seconds?: number | null;
  opinion_id?: number;
  text?: string;
}

export interface ConsultationRecord {
  ticket_id: number;
  consultations: { id: number; note: string; created_by_id: number; created_at: string }[];
  invitations: Invitation[];
  opinions: Opinion[];
  timeline: TimelineEntry[];
}

/** What each call answers, keyed "METHOD path" exactly as in the OpenAPI document. */
export interface Responses {
  "post /api/auth/login": LoginResult;
  "get /api/me": User;
  "post /api/auth/2fa/enrol": TwoFactorEnrolment;
  "post /api/auth/2fa/confirm": RecoveryCodes;
  "post /api/auth/2fa/recovery-codes": RecoveryCodes;
  "get /api/health": Health;
  "get /api/org": Org;
  "get /api/items": Item[];
  "get /api/items/{item_id}": Item;
  "post /api/tickets": Ticket;
  "get /api/tickets": Ticket[];
  "get /api/tickets/{ticket_id}": Ticket;
  "get /api/tickets/{ticket_id}/resident": ResidentFull;
  "post /api/auth/logout": null;
  "post /api/auth/password": LoginResult;
  "post /api/windows/{window_id}/call-next": Ticket | null;
  "post /api/tickets/{ticket_id}/start": Ticket;
  "post /api/tickets/{ticket_id}/recall": Ticket;
  "post /api/tickets/{ticket_id}/no-show": Ticket;
  "post /api/tickets/{ticket_id}/transfer": Ticket;
  "post /api/tickets/{ticket_id}/complete": Ticket;
  "post /api/tickets/{ticket_id}/cancel": Ticket;
  "post /api/tickets/{ticket_id}/rating": Ticket;
  "get /api/tickets/{ticket_id}/messages": Message[];
  "get /api/queues": Queue[];
  "get /api/dashboard": Dashboard;
  "get /api/dashboard/links": LinkWall;
  "get /api/alerts": Alert[];
  "post /api/alerts/{alert_id}/acknowledge": Alert;
  "post /api/tidal-windows": Window;
  "post /api/tidal-windows/{window_id}/close": Window;
  "get /api/users": User[];
  "get /api/ice-servers": IceServers;
  "post /api/tickets/{ticket_id}/uploads": UploadProgress;
  "get /api/uploads/{upload_id}": UploadProgress;
  "post /api/uploads/{upload_id}/complete": CaseDocument;
  "get /api/tickets/{ticket_id}/documents": CaseDocument[];
  "get /api/documents/{document_id}": CaseDocument;
  "post /api/documents/{document_id}/review": CaseDocument;
  "get /api/tickets/{ticket_id}/checklist": ChecklistLine[];
  "get /api/experts": PoolExpert[];
  "patch /api/experts/me": ExpertSettings;
  "post /api/tickets/{ticket_id}/consultations": ConsultationCreated;
  "get /api/tickets/{ticket_id}/consultations": ConsultationRecord;
  "post /api/tickets/{ticket_id}/consultations/bring-in": Invitation[];
  "post /api/tickets/{ticket_id}/consultations/send-back": Invitation[];
  "get /api/invitations": InvitationToMe[];
  "post /api/invitations/{invitation_id}/accept": Invitation & { expert_name: string; case: CaseSummary };
  "post /api/invitations/{invitation_id}/decline": Invitation & { expert_name: string; reason: string };
  "post /api/tickets/{ticket_id}/opinions": Opinion;
  "get /api/audit": AuditEntry[];
  "get /api/audit/verify": AuditVerdict;
}
