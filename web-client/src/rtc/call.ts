// One participant's side of a call (docs/protocol.md "The call"): one publishing and one
// subscribing RTCPeerConnection to the server's relay, signalled over the page's socket.
// Written from the same protocol as server/static/dev/call.js, which it follows closely.
//
// A consultation (docs/protocol.md "Consultation") adds two things: experts who start in the
// private consultation channel (only the clerk and the experts see and hear them; the relay
// keeps them from the worker) and the clerk's side microphone for talking to the experts
// without the resident hearing (published as `side_microphone` while `microphone` is muted).
import { markRaw, reactive, readonly } from "vue";
import type { Channel, IdleOutlet, OfferedTrack, Participant, Role, Source, SubscribeOffer } from "@/api/events";
import { ApiError } from "@/api/http";
import type { LiveConnection } from "@/api/socket";
import { errorText } from "@/lib/errors";
import { callConstraints, mediaProblem, type MediaProblem } from "./devices";
import { rtcConfiguration, selectedPath, type CandidatePath } from "./iceConfig";
import { QualitySampler } from "./quality";

export type CallPhase = "idle" | "joining" | "connected" | "reconnecting" | "closed" | "replaced" | "failed";

export interface RemoteTrack {
  mid: string;
  info: OfferedTrack;
  track: MediaStreamTrack;
  stream: MediaStream;
}

export interface ReceivedStats {
  kind: string;
  source: string;
  framesDecoded: number;
  packetsReceived: number;
  totalSamplesReceived: number;
}

const MAX_VIDEO_BITRATE = 1_500_000;
const DISCONNECTED_GRACE_MS = 4000;
/** How often the media watch reads getStats (see checkMedia). */
const MEDIA_CHECK_MS = 1000;
/** A new connection must show media flowing within this long… */
const MEDIA_GRACE_MS = 10_000;
/** …and a flowing one that shows no progress for this long is in trouble. */
const MEDIA_STALL_MS = 8000;
/** Retries of a connection in trouble: the first at once, then 5 s, 10 s, 20 s … up to a minute apart. */
const RETRY_BASE_MS = 5000;
const RETRY_MAX_MS = 60_000;
/** After this many retries without media the message says to call the administrator. */
const RETRIES_BEFORE_HELP = 2;
/** How long a consultation.stage move explains the participant_left / _joined that follows it. */
const STAGE_MOVE_MS = 5000;

function waitGathering(pc: RTCPeerConnection, ms = 3000): Promise<void> {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") resolve();
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, ms);
  });
}

function preferVp8(transceiver: RTCRtpTransceiver): void {
  if (!RTCRtpSender.getCapabilities || !transceiver.setCodecPreferences) return;
  const codecs = RTCRtpSender.getCapabilities("video")?.codecs ?? [];
  const rank = (c: RTCRtpCodec) => (/vp8/i.test(c.mimeType) ? 0 : /rtx/i.test(c.mimeType) ? 1 : 2);
  transceiver.setCodecPreferences([...codecs].sort((a, b) => rank(a) - rank(b)));
}

/**
 * The camera goes out in layers (simulcast, docs/protocol.md "Layers"): the relay gives each
 * viewer the one its link carries and asks us (publish_layers) to pause those nobody gets.
 * Lowest first, as the relay reads them; the rates match the relay's nominal ones. From a VGA
 * camera Chrome sends the lower two of these three (its layer limit for that size); measured
 * on shaped links (bench/weak_link.py) that beat two layers of 320×240 and 640×480, whose
 * upper layer flooded a 600 kbit/s uplink.
 */
const CAMERA_LAYERS: RTCRtpEncodingParameters[] = [
  { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "f", scaleResolutionDownBy: 1, maxBitrate: MAX_VIDEO_BITRATE },
];

function addCamera(pc: RTCPeerConnection, track: MediaStreamTrack): RTCRtpTransceiver {
  try {
    return pc.addTransceiver(track, { direction: "sendonly", sendEncodings: CAMERA_LAYERS.map((e) => ({ ...e })) });
  } catch {
    return pc.addTransceiver(track, { direction: "sendonly" }); // a browser without simulcast: one stream
  }
}

/** A shared screen is text: on a thin link it keeps its resolution and loses frame rate instead. */
async function keepResolution(sender: RTCRtpSender): Promise<void> {
  if (sender.track) sender.track.contentHint = "detail";
  const params = sender.getParameters() as RTCRtpSendParameters & { degradationPreference?: string };
  params.degradationPreference = "maintain-resolution";
  try {
    await sender.setParameters(params);
  } catch {
    // older browsers: the content hint alone asks for the same
  }
}

async function capBitrate(sender: RTCRtpSender): Promise<void> {
  const params = sender.getParameters();
  if (!params.encodings?.length) params.encodings = [{}];
  if (params.encodings.length > 1) return; // layers carry their own caps
  for (const encoding of params.encodings) encoding.maxBitrate = MAX_VIDEO_BITRATE;
  try {
    await sender.setParameters(params);
  } catch {
    // a browser that refuses the cap still sends; the relay copes
  }
}

/** Our camera and microphone going out (publishing connection) or the others' media coming in. */
export type Direction = "send" | "receive";

/** What the media watch knows of one direction (see checkMedia). */
interface Flow {
  pc: RTCPeerConnection | null;
  /** When this connection (or the wish to receive anything on it) started. */
  since: number;
  /** The progress counter at the last look, and when it last grew. */
  count: number;
  grewAt: number;
  ok: boolean;
  /** Not flowing past its grace: told to the user and retried; retries since it last flowed, and the pending one. */
  troubled: boolean;
  attempts: number;
  timer: ReturnType<typeof setTimeout> | null;
}

function newFlow(): Flow {
  return { pc: null, since: 0, count: -1, grewAt: 0, ok: false, troubled: false, attempts: 0, timer: null };
}

/** A number that grows while media flows: for the publishing connection, what comes back from
 * the relay (RTCP reports on the candidate pair, remote-inbound-rtp); for the subscribing one,
 * RTP packets received (audio keeps it growing while the relay pauses video on a weak link). */
async function progressCount(pc: RTCPeerConnection, direction: Direction): Promise<number> {
  let count = 0;
  const report = await pc.getStats();
  report.forEach((s: Record<string, unknown>) => {
    if (direction === "receive") {
      if (s.type === "inbound-rtp") count += Number(s.packetsReceived ?? 0);
    } else if (s.type === "candidate-pair") {
      count += Number(s.bytesReceived ?? 0);
    } else if (s.type === "remote-inbound-rtp") {
      count += Number(s.packetsReceived ?? 0) + Number(s.roundTripTimeMeasurements ?? 0);
    }
  });
  return count;
}

export class CallSession {
  /** The call as it stands; only this class writes it (the views read `state`). */
  private readonly current = reactive({
    phase: "idle" as CallPhase,
    error: "",
    /** Why the camera or microphone could not be opened, for a message a person can act on. */
    mediaProblem: null as MediaProblem | null,
    joined: false,
    rejoins: 0,
    /** Our part in the call (from the join answer) and, for an expert, which channel we are in. */
    role: null as Role | null,
    channel: "call" as Channel,
    /** The clerk talks to the experts only: side_microphone on, microphone muted for the resident. */
    privateTalk: false,
    sharing: false,
    cameraId: "",
    muted: { camera: false, microphone: false } as Record<"camera" | "microphone", boolean>,
    participants: [] as Participant[],
    remote: [] as RemoteTrack[],
    local: null as MediaStream | null,
    screen: null as MediaStream | null,
    /** Received videos the relay paused because our link cannot take them (video_paused). */
    videoPaused: {} as Record<string, boolean>,
    /**
     * Media that is not getting through although the connection is up as far as signalling
     * goes: "send" (our camera does not reach the relay), "receive" (the others' media does not
     * arrive); "" when all flows. `troubleRetries` counts the retries so far.
     */
    trouble: "" as Direction | "",
    troubleRetries: 0,
  });
  /** The call as the views see it: read-only, it changes through this class's methods. */
  readonly state = readonly(this.current);
  /** Link quality of every tile, from getStats once a second (rtc/quality.ts). */
  readonly quality = new QualitySampler(() => ({
    pub: this.pub,
    sub: this.sub,
    camera: this.cameraTrack(),
    remote: this.current.remote.filter((r) => r.info.kind === "video").map((r) => ({ trackId: r.info.track_id, track: r.track })),
    paused: this.current.videoPaused,
  }));
  private pub: RTCPeerConnection | null = null;
  private sub: RTCPeerConnection | null = null;
  private cameraSender: RTCRtpSender | null = null;
  private sideMic: MediaStreamTrack | null = null;
  private me = 0;
  /** Experts a consultation.stage just moved: user id → when (see STAGE_MOVE_MS). */
  private moving = new Map<number, number>();
  /** Mute flags by track, with the order they arrived in relative to subscribe offers. */
  private muteSeen = new Map<string, { muted: boolean; seq: number }>();
  private seq = 0;
  private tracksByMid = new Map<string, OfferedTrack | IdleOutlet>();
  private streams = new Map<string, MediaStream>();
  private rtcConfig: RTCConfiguration = { iceServers: [] };
  private offs: (() => void)[] = [];
  private offers: Promise<void> = Promise.resolve();
  private timers = new Map<RTCPeerConnection, ReturnType<typeof setTimeout>>();
  private flows: Record<Direction, Flow> = { send: newFlow(), receive: newFlow() };
  private mediaTimer: ReturnType<typeof setInterval> | null = null;
  private checking = false;
  private joining = false;
  private ended = false;

  constructor(
    readonly live: LiveConnection,
    readonly ticketId: number,
  ) {}

  private get mine() {
    return (payload: { ticket_id: number }) => payload.ticket_id === this.ticketId;
  }

  /** Join the call and follow it; what keeps it from starting (no camera, a refusal) ends in phase "failed". */
  async start(): Promise<void> {
    try {
      await this.open();
    } catch (e) {
      this.current.error = errorText(e);
      this.current.phase = "failed";
    }
  }

  private async open(): Promise<void> {
    this.rtcConfig = await rtcConfiguration();
    const mine = this.mine;
    this.offs.push(
      this.live.on("subscribe_offer", (offer) => {
        if (!mine(offer)) return;
        const seq = ++this.seq;
        this.offers = this.offers.then(() => this.onOffer(offer, seq)).catch((e: unknown) => this.fail(e));
      }),
      this.live.on("participant_joined", (p) => {
        if (!mine(p)) return;
        this.moving.delete(p.user_id);
        this.current.participants = [...this.current.participants.filter((q) => q.user_id !== p.user_id), p];
      }),
      this.live.on("participant_left", (p) => {
        if (!mine(p)) return;
        // A sent-back expert "leaves" the main call but stays in the consultation channel,
        // which the clerk and the experts still share with them (the stage event came first).
        const moved = this.moving.get(p.user_id);
        this.moving.delete(p.user_id);
        if (moved !== undefined && Date.now() - moved < STAGE_MOVE_MS && this.current.participants.some((q) => q.user_id === p.user_id)) {
          this.setChannel(p.user_id, "consultation");
          return;
        }
        this.current.participants = this.current.participants.filter((q) => q.user_id !== p.user_id);
      }),
      this.live.on("consultation.stage", (stage) => {
        if (!mine(stage)) return;
        const channel: Channel = stage.main ? "call" : "consultation";
        for (const invitation of stage.invitations) {
          if (invitation.expert_id === this.me) {
            this.current.channel = channel;
          } else if (this.current.participants.some((q) => q.user_id === invitation.expert_id)) {
            this.moving.set(invitation.expert_id, Date.now());
            this.setChannel(invitation.expert_id, channel);
          }
        }
      }),
      this.live.on("call_closed", (c) => {
        if (mine(c)) this.end("closed");
      }),
      this.live.on("track_muted", (t) => {
        if (!mine(t)) return;
        this.muteSeen.set(t.track_id, { muted: t.muted, seq: ++this.seq });
        for (const [mid, info] of this.tracksByMid) {
          if (info.active && info.track_id === t.track_id) this.tracksByMid.set(mid, { ...info, muted: t.muted });
        }
        this.refreshRemote();
      }),
      this.live.on("publish_layers", (l) => {
        if (mine(l) && l.source === "camera") void this.setLayers(l.active);
      }),
      this.live.on("video_paused", (v) => {
        if (mine(v)) this.current.videoPaused = { ...this.current.videoPaused, [v.track_id]: v.paused };
      }),
      this.live.on("call_replaced", (c) => {
        if (mine(c)) this.end("replaced");
      }),
      // Every (re)connect of the socket joins again: the relay gives our place back.
      this.live.onConnect(() => {
        void this.join().catch((e: unknown) => this.fail(e));
      }),
    );
    this.quality.start();
    this.mediaTimer = setInterval(() => void this.checkMedia(), MEDIA_CHECK_MS);
    if (!this.live.connected) {
      this.current.phase = "reconnecting";
      return; // the connect hook joins
    }
    await this.join();
  }

  /** Join (or rejoin after a dropped socket): the relay answers with a fresh subscribe offer. */
  private async join(): Promise<void> {
    if (this.ended) return;
    this.joining = true;
    try {
      await this.joinOnce();
    } finally {
      this.joining = false;
    }
  }

  private async joinOnce(): Promise<void> {
    this.current.phase = this.current.joined ? "reconnecting" : "joining";
    if (this.sub) {
      this.sub.close();
      this.sub = null;
    }
    const ack = await this.live.request("join", { ticket_id: this.ticketId });
    if (this.ended) return;
    this.me = Number(ack.participant_id.replace(/^u/, ""));
    this.current.role = ack.role;
    this.current.channel = ack.participants.find((p) => p.user_id === this.me)?.channel ?? "call";
    this.current.participants = ack.participants;
    if (ack.rejoined) this.current.rejoins += 1;
    if (!this.current.local) {
      try {
        this.current.local = markRaw(await navigator.mediaDevices.getUserMedia(callConstraints(this.current.cameraId || undefined)));
        this.current.mediaProblem = null;
      } catch (error) {
        this.current.mediaProblem = mediaProblem(error);
        throw error;
      }
      this.applyEnabled();
      const settings = this.current.local.getVideoTracks()[0]?.getSettings();
      if (settings?.deviceId) this.current.cameraId = settings.deviceId;
    }
    await this.publish();
    // "connected" only once media flows: checkMedia decides.
    this.current.joined = true;
    this.current.error = "";
  }

  private setChannel(userId: number, channel: Channel): void {
    this.current.participants = this.current.participants.map((q) => (q.user_id === userId ? { ...q, channel } : q));
  }

  /** Which of our tracks carry sound and picture, from the mute switches and private talk. */
  private applyEnabled(): void {
    const muted = this.current.muted;
    for (const t of this.current.local?.getVideoTracks() ?? []) t.enabled = !muted.camera;
    for (const t of this.current.local?.getAudioTracks() ?? []) t.enabled = !muted.microphone && !this.current.privateTalk;
    if (this.sideMic) this.sideMic.enabled = !muted.microphone;
  }

  /** What the others are told is muted: a fresh publish starts every track unmuted. */
  private async sendMutes(onlyMuted: boolean): Promise<void> {
    const muted = this.current.muted;
    const flags: [Source, boolean][] = [
      ["camera", muted.camera],
      ["microphone", muted.microphone || this.current.privateTalk],
    ];
    if (this.sideMic) flags.push(["side_microphone", muted.microphone]);
    for (const [source, value] of flags) {
      if (onlyMuted && !value) continue;
      await this.live.request("mute", { ticket_id: this.ticketId, source, muted: value });
    }
  }

  /** Publish every track we send (camera, microphone, side microphone, screen), replacing the last publisher. */
  private async publish(): Promise<void> {
    const local = this.current.local;
    if (!local || this.ended) return;
    this.pub?.close();
    const pc = new RTCPeerConnection(this.rtcConfig);
    this.pub = pc;
    const entries: [RTCRtpTransceiver, Source][] = [];
    for (const track of local.getTracks()) {
      if (track.kind === "video") entries.push([addCamera(pc, track), "camera"]);
      else entries.push([pc.addTransceiver(track, { direction: "sendonly" }), "microphone"]);
    }
    if (this.sideMic) entries.push([pc.addTransceiver(this.sideMic, { direction: "sendonly" }), "side_microphone"]);
    const screenTrack = this.current.screen?.getVideoTracks()[0];
    if (screenTrack) entries.push([pc.addTransceiver(screenTrack, { direction: "sendonly" }), "screen"]);
    for (const [t, source] of entries) {
      if (source === "camera") this.cameraSender = t.sender;
      if (t.sender.track?.kind === "video") preferVp8(t);
    }
    this.watch(pc, "send");
    await pc.setLocalDescription(await pc.createOffer());
    await waitGathering(pc);
    const sources: Record<string, Source> = {};
    for (const [t, source] of entries) if (t.mid) sources[t.mid] = source;
    const answer = await this.live.request("publish", {
      ticket_id: this.ticketId, type: "offer", sdp: pc.localDescription?.sdp ?? "", sources,
    });
    if (pc !== this.pub) return;
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    for (const [t, source] of entries) {
      if (t.sender.track?.kind !== "video") continue;
      await capBitrate(t.sender);
      if (source === "screen") await keepResolution(t.sender);
    }
    await this.sendMutes(true);
  }

  /** Dynacast: send only the camera layers the relay says someone gets. */
  private async setLayers(active: string[]): Promise<void> {
    const sender = this.cameraSender;
    if (!sender) return;
    const params = sender.getParameters();
    if (!params.encodings || params.encodings.length < 2) return;
    let changed = false;
    for (const encoding of params.encodings) {
      const on = !encoding.rid || active.includes(encoding.rid);
      if (encoding.active !== on) {
        encoding.active = on;
        changed = true;
      }
    }
    if (!changed) return;
    try {
      await sender.setParameters(params);
    } catch {
      // a renegotiation in flight: the relay asks again when it next changes its mind
    }
  }

  private async onOffer(offer: SubscribeOffer, seq: number): Promise<void> {
    if (this.ended) return;
    if (!this.sub) {
      const pc = new RTCPeerConnection(this.rtcConfig);
      this.sub = pc;
      this.current.videoPaused = {}; // a new subscription starts with every video flowing
      this.watch(pc, "receive");
    }
    const pc = this.sub;
    // A track_muted that arrived after this offer (while an earlier one was being answered) is newer.
    this.tracksByMid = new Map(
      offer.tracks.map((t) => {
        const seen = t.active ? this.muteSeen.get(t.track_id) : undefined;
        return [t.mid, t.active && seen && seen.seq > seq ? { ...t, muted: seen.muted } : t];
      }),
    );
    await pc.setRemoteDescription({ type: "offer", sdp: offer.sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await waitGathering(pc);
    await this.live.request("subscribe_answer", { ticket_id: this.ticketId, type: "answer", sdp: pc.localDescription?.sdp ?? "" });
    this.refreshRemote();
  }

  private refreshRemote(): void {
    const remote: RemoteTrack[] = [];
    for (const t of this.sub?.getTransceivers() ?? []) {
      const info = t.mid ? this.tracksByMid.get(t.mid) : undefined;
      if (!info || !info.active || !t.mid) continue;
      const track = t.receiver.track;
      let stream = this.streams.get(track.id);
      if (!stream) this.streams.set(track.id, (stream = markRaw(new MediaStream([track]))));
      remote.push(markRaw({ mid: t.mid, info, track, stream }));
    }
    this.current.remote = remote;
  }

  /** A connection whose ICE failed or stayed disconnected is in trouble at once (see troubled). */
  private watch(pc: RTCPeerConnection, direction: Direction): void {
    const clear = () => {
      const timer = this.timers.get(pc);
      if (timer) clearTimeout(timer);
      this.timers.delete(pc);
    };
    const retry = () => {
      clear();
      if (this.ended || pc.signalingState === "closed") return;
      if (pc !== (direction === "send" ? this.pub : this.sub)) return;
      this.troubled(direction);
    };
    pc.addEventListener("iceconnectionstatechange", () => {
      if (pc.iceConnectionState === "failed") retry();
      else if (pc.iceConnectionState === "disconnected") {
        clear();
        this.timers.set(pc, setTimeout(() => pc.iceConnectionState === "disconnected" && retry(), DISCONNECTED_GRACE_MS));
      } else clear();
    });
  }

  /**
   * The media watch, once a second: a direction flows when its connection's ICE is connected
   * and its progress counter grew within MEDIA_STALL_MS. The call is "connected" only when both
   * flow (receiving counts as flowing while nobody else publishes). A direction that has not
   * flowed MEDIA_GRACE_MS after its connection started, or stalled, is in trouble: the user is
   * told (state.trouble) and it is retried with back-off.
   */
  private async checkMedia(): Promise<void> {
    if (this.ended || this.checking || this.joining || !this.current.joined || !this.live.connected) return;
    this.checking = true;
    try {
      const now = Date.now();
      for (const direction of ["send", "receive"] as const) {
        const flow = this.flows[direction];
        const pc = direction === "send" ? this.pub : this.sub;
        const wanted = direction === "send" ? pc !== null : this.current.remote.length > 0;
        if (pc !== flow.pc || !wanted) Object.assign(flow, { pc, since: now, count: -1, grewAt: 0, ok: false });
        if (!wanted && direction === "receive") {
          flow.ok = true; // nobody else publishes: nothing to wait for
          this.flowing(direction);
        }
        if (!pc || !wanted) continue;
        const ice = pc.iceConnectionState;
        const count = await progressCount(pc, direction);
        if (flow.count >= 0 && count > flow.count) flow.grewAt = now;
        flow.count = count;
        flow.ok = (ice === "connected" || ice === "completed") && flow.grewAt > 0 && now - flow.grewAt < MEDIA_STALL_MS;
        if (flow.ok) {
          this.flowing(direction);
        } else if (now - Math.max(flow.since, flow.grewAt) > (flow.grewAt ? MEDIA_STALL_MS : MEDIA_GRACE_MS)) {
          this.troubled(direction);
        }
      }
      if (this.ended || this.joining) return;
      const { send, receive } = this.flows;
      if (send.ok && receive.ok) {
        this.current.phase = "connected";
      } else if (this.current.phase === "connected" && this.current.trouble) {
        this.current.phase = "reconnecting";
      }
    } finally {
      this.checking = false;
    }
  }

  private flowing(direction: Direction): void {
    const flow = this.flows[direction];
    flow.attempts = 0;
    flow.troubled = false;
    if (flow.timer) clearTimeout(flow.timer);
    flow.timer = null;
    this.showTrouble();
  }

  /** Say so, and publish again / resubscribe: at once the first time, then further and further apart. */
  private troubled(direction: Direction): void {
    const flow = this.flows[direction];
    if (this.ended || flow.timer) return;
    flow.troubled = true;
    this.showTrouble();
    if (this.current.phase === "connected") this.current.phase = "reconnecting";
    const delay = flow.attempts === 0 ? 0 : Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (flow.attempts - 1));
    flow.timer = setTimeout(() => {
      flow.timer = null;
      if (this.ended || !this.live.connected || this.joining) return;
      flow.attempts += 1;
      flow.pc = null; // the retried connection gets its own grace period
      this.showTrouble();
      void this.retry(direction).catch((e: unknown) => this.fail(e));
    }, delay);
  }

  /** Our camera not getting out matters most; then the others' media not coming in. */
  private showTrouble(): void {
    const shown = (["send", "receive"] as const).find((d) => this.flows[d].troubled);
    this.current.trouble = shown ?? "";
    this.current.troubleRetries = shown ? this.flows[shown].attempts : 0;
  }

  private async retry(direction: Direction): Promise<void> {
    if (direction === "send") {
      await this.publish();
      return;
    }
    const pc = this.sub;
    pc?.close();
    if (this.sub === pc) this.sub = null;
    await this.live.request("resubscribe", { ticket_id: this.ticketId });
  }

  /** Whether the message should send the user to the administrator (retries did not help). */
  get needsHelp(): boolean {
    return this.current.troubleRetries >= RETRIES_BEFORE_HELP;
  }

  async shareScreen(): Promise<void> {
    const screen = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    this.current.screen = markRaw(screen);
    this.current.sharing = true;
    screen.getVideoTracks()[0]?.addEventListener("ended", () => void this.stopScreen());
    await this.publish();
  }

  async stopScreen(): Promise<void> {
    if (!this.current.screen) return;
    for (const t of this.current.screen.getTracks()) t.stop();
    this.current.screen = null;
    this.current.sharing = false;
    await this.publish();
  }

  /** Switch camera without renegotiating: the relay keeps forwarding "camera". */
  async switchCamera(deviceId: string): Promise<void> {
    const local = this.current.local;
    if (!local) {
      this.current.cameraId = deviceId;
      return;
    }
    const fresh = await navigator.mediaDevices.getUserMedia({ video: (callConstraints(deviceId).video as MediaTrackConstraints) });
    const track = fresh.getVideoTracks()[0];
    if (!track) return;
    track.enabled = !this.current.muted.camera;
    const old = local.getVideoTracks()[0];
    if (this.cameraSender) await this.cameraSender.replaceTrack(track);
    if (old) {
      local.removeTrack(old);
      old.stop();
    }
    local.addTrack(track);
    this.current.cameraId = deviceId;
    // a new MediaStream object makes <video> elements pick the new track up
    this.current.local = markRaw(new MediaStream(local.getTracks()));
  }

  /** Turn our camera or microphone off and on; the others are told (track_muted). */
  async setMuted(source: "camera" | "microphone", muted: boolean): Promise<void> {
    this.current.muted[source] = muted;
    this.applyEnabled();
    if (source === "camera") {
      await this.live.request("mute", { ticket_id: this.ticketId, source, muted });
    } else {
      await this.live.request("mute", { ticket_id: this.ticketId, source, muted: muted || this.current.privateTalk });
      if (this.sideMic) await this.live.request("mute", { ticket_id: this.ticketId, source: "side_microphone", muted });
    }
  }

  /**
   * 私下交流: the clerk's voice goes to the experts only. The microphone is published a second
   * time as `side_microphone` (consultation-only, the relay never forwards it to the worker)
   * and the main `microphone` is silenced and marked muted; off again, the other way round.
   * publish carries all tracks every time, so both changes are a fresh publish.
   */
  async setPrivateTalk(on: boolean): Promise<void> {
    if (on === this.current.privateTalk || this.ended) return;
    const mic = this.current.local?.getAudioTracks()[0];
    if (on) {
      if (!mic) throw new Error("没有可用的麦克风，无法私下交流");
      this.sideMic = markRaw(mic.clone());
    } else {
      this.sideMic?.stop();
      this.sideMic = null;
    }
    this.current.privateTalk = on;
    this.applyEnabled();
    await this.publish();
  }

  cameraTrack(): MediaStreamTrack | null {
    return this.current.local?.getVideoTracks()[0] ?? null;
  }

  /** Per received track: frames decoded (video) or samples received (audio). */
  async stats(): Promise<Record<string, ReceivedStats>> {
    const out: Record<string, ReceivedStats> = {};
    for (const t of this.sub?.getTransceivers() ?? []) {
      const info = t.mid ? this.tracksByMid.get(t.mid) : undefined;
      if (!info?.active) continue;
      const report = await t.receiver.getStats();
      report.forEach((s: Record<string, unknown>) => {
        if (s.type !== "inbound-rtp") return;
        out[info.track_id] = {
          kind: String(s.kind),
          source: info.source,
          framesDecoded: Number(s.framesDecoded ?? 0),
          packetsReceived: Number(s.packetsReceived ?? 0),
          totalSamplesReceived: Number(s.totalSamplesReceived ?? 0),
        };
      });
    }
    return out;
  }

  /** The selected candidate pair of each connection (host, srflx, relay …), for support staff. */
  async paths(): Promise<{ send: CandidatePath | null; receive: CandidatePath | null }> {
    return { send: await selectedPath(this.pub), receive: await selectedPath(this.sub) };
  }

  private fail(error: unknown): void {
    if (this.ended) return;
    if (error instanceof ApiError && (error.code === "call_not_open" || error.code === "ticket_not_found")) {
      this.end("closed");
      return;
    }
    if (error instanceof ApiError && error.code === "not_connected") {
      this.current.phase = "reconnecting";
      return;
    }
    console.error(error);
    this.current.error = errorText(error);
    this.current.phase = this.current.joined ? "reconnecting" : "failed";
  }

  private end(phase: "closed" | "replaced"): void {
    this.release();
    this.current.phase = phase;
  }

  private release(): void {
    if (this.ended) return;
    this.ended = true;
    for (const off of this.offs) off();
    this.offs = [];
    this.quality.stop();
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    if (this.mediaTimer) clearInterval(this.mediaTimer);
    this.mediaTimer = null;
    for (const flow of Object.values(this.flows)) if (flow.timer) clearTimeout(flow.timer);
    this.current.trouble = "";
    this.pub?.close();
    this.sub?.close();
    this.pub = this.sub = null;
    for (const t of this.current.local?.getTracks() ?? []) t.stop();
    for (const t of this.current.screen?.getTracks() ?? []) t.stop();
    this.sideMic?.stop();
    this.sideMic = null;
    this.current.privateTalk = false;
    this.current.remote = [];
    this.current.local = null;
    this.current.screen = null;
    this.current.sharing = false;
  }

  /** Leave the call (the page closes or the case ended here). */
  async leave(): Promise<void> {
    if (this.ended) return;
    const wasJoined = this.current.joined && this.live.connected;
    this.release();
    this.current.phase = "closed";
    if (wasJoined) {
      try {
        await this.live.request("leave", { ticket_id: this.ticketId });
      } catch {
        // the room may be closed already
      }
    }
  }
}
