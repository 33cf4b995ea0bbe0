// Response shapes, by the names the pages use. Nothing here is written by hand: each is a schema
// of src/api/schema.d.ts, generated from the server's OpenAPI document, whose response models are
// server/api/responses.py (and the tests validate every answer against them). A shape that
// changes on the server makes the pages reading it fail to type-check, not fail at run time.
import type { components } from "./schema";

export type Schemas = components["schemas"];

export type Role = Schemas["Role"];
export type TicketStatus = Schemas["TicketStatus"];
export type WarningLevel = Schemas["Queue"]["warning_level"];
export type CompletionResult = NonNullable<Schemas["Ticket"]["result"]>;
export type Priority = NonNullable<Schemas["Ticket"]["priority"]>;

export type DepartmentRef = Schemas["DepartmentRef"];
export type UserWindow = Schemas["UserWindow"];
export type User = Schemas["User"];
/** The signed-in user (/api/me, the login answer): with their second factor and the time zone. */
export type Me = Schemas["Me"];
export type Clerk = Schemas["Clerk"];
export type TwoFactorStatus = Schemas["TwoFactorStatus"];
export type TwoFactorEnrolment = Schemas["TwoFactorEnrolment"];
export type LoginResult = Schemas["SignedIn"];
export type Notification = Schemas["Notification"];
export type Outbox = Schemas["Outbox"];
export type PublicChecklist = Schemas["PublicChecklist"];
/** 督办台账: a follow-up item, its steps, and the per-department summary. */
export type LedgerItem = Schemas["LedgerItem"];
export type LedgerSummary = Schemas["LedgerSummary"];

export type Window = Schemas["CloudWindow"];
export type Org = Schemas["Org"];
export type Material = Schemas["Material"];
export type Item = Schemas["ServiceItem"];
export type ItemQuestion = Schemas["ItemQuestion"];
/** 办理情形: one way an item is handled, with its own checklist, time limit, fee and pickup. */
export type Situation = Schemas["Situation"];
/** 一事联办: several items as one case, with one merged checklist (a shared material once). */
export type Bundle = Schemas["Bundle"];
export type CaseItem = Schemas["CaseItem"];
export type BundleReport = Schemas["BundleReport"];

/** In tickets, lists and events the ID number and phone come masked (`masked: true`); the full
 * record is one audited read, `GET /api/tickets/{id}/resident`, for the case's worker and clerk. */
export type Resident = Schemas["TicketResident"];
export type ResidentFull = Schemas["ResidentDetails"];
export type Ticket = Schemas["Ticket"];
/** A ticket with its place in the queue (on take, and in the events of a waiting ticket). */
export type PlacedTicket = Schemas["PlacedTicket"];
export type Message = Schemas["Message"];

export type Queue = Schemas["Queue"];
export type Alert = Schemas["Alert"];
/** An alert as the link pushed to a supervisor's phone shows it (no login). */
export type AlertByLink = Schemas["AlertByLink"];
export type Dashboard = Schemas["Dashboard"];
export type LinkGrade = Schemas["LinkParticipant"]["grade"];
export type LinkWall = Schemas["LinkWall"];
/** 网点一览: the towns with their extension points, who is online, calls, today's tickets, silent points. */
export type Network = Schemas["Network"];
export type NetworkTown = Schemas["NetworkTown"];
export type NetworkPoint = Schemas["NetworkPoint"];
/** 延伸点管理: a point as the administrator edits it, and an import's result. */
export type ExtensionPoint = Schemas["ExtensionPoint"];
export type PointImport = Schemas["PointImport"];

export type DocumentStatus = Schemas["CaseDocument"]["status"];
export type CaseDocument = Schemas["CaseDocument"];
/** In a case's list: with a short-lived thumbnail address. */
export type ListedDocument = Schemas["ListedDocument"];
/** Opened for viewing (audited): with short-lived addresses of each variant. */
export type OpenedDocument = Schemas["OpenedDocument"];
export type ChecklistLine = Schemas["ChecklistLine"];
export type UploadProgress = Schemas["UploadProgress"];

export type IceServers = Schemas["IceServers"];
export type AuditEntry = Schemas["AuditEntry"];
export type AuditVerdict = Schemas["AuditVerdict"];
export type Health = Schemas["Health"];

export type Presence = Schemas["PoolExpert"]["presence"];
export type PoolExpert = Schemas["PoolExpert"];
export type ExpertSettings = Schemas["ExpertSettings"];
export type Invitation = Schemas["Invitation"];
/** An invitation with the expert's name (answers, the timeline, `invitation.updated`). */
export type NamedInvitation = Schemas["NamedInvitation"];
/** An invitation as the expert reads it: who asks, why, and the case. */
export type InvitationToMe = Schemas["InvitationToMe"];
export type CaseSummary = Schemas["CaseSummary"];
export type Opinion = Schemas["ExpertOpinion"];
export type ConsultationCreated = Schemas["ConsultationCreated"];
export type TimelineKind = Schemas["TimelineEntry"]["kind"];
export type TimelineEntry = Schemas["TimelineEntry"];
export type ConsultationRecord = Schemas["ConsultationRecord"];

/** 证照到期提醒: a certificate type with its rules, the registry (masked), an import's result,
 * the report, and what the holder's link shows. */
export type CertificateType = Schemas["CertificateType"];
export type Certificate = Schemas["Certificate"];
export type CertificateImport = Schemas["CertificateImport"];
export type ReminderReport = Schemas["ReminderReport"];
export type PublicReminder = Schemas["PublicReminder"];
export type Report = Schemas["Report"];
export type ReportCell = Schemas["ReportCell"];
export type ReportMetric = Schemas["ReportMetric"];
