// One participant's side of a call (docs/protocol.md "The call"): one publishing and one
// subscribing RTCPeerConnection to the server's relay, signalled over the page's socket.
// Written from the same protocol as server/static/dev/call.js, which it follows closely.
import { markRaw, reactive } from "vue";
import type { OfferedTrack, Participant, Source, SubscribeOffer } from "@/api/events";
import { ApiError, request } from "@/api/http";
import type { LiveConnection } from "@/api/socket";
import { callConstraints, mediaProblem, type MediaProblem } from "./devices";

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

async function capBitrate(sender: RTCRtpSender): Promise<void> {
  const params = sender.getParameters();
  if (!params.encodings?.length) params.encodings = [{}];
  for (const encoding of params.encodings) encoding.maxBitrate = MAX_VIDEO_BITRATE;
  try {
    await sender.setParameters(params);
  } catch {
    // a browser that refuses the cap still sends; the relay copes
  }
}

export class CallSession {
  readonly state = reactive({
    phase: "idle" as CallPhase,
    error: "",
    /** Why the camera or microphone could not be opened, for a message a person can act on. */
    mediaProblem: null as MediaProblem | null,
    joined: false,
    rejoins: 0,
    sharing: false,
    cameraId: "",
    muted: { camera: false, microphone: false } as Record<"camera" | "microphone", boolean>,
    participants: [] as Participant[],
    remote: [] as RemoteTrack[],
    local: null as MediaStream | null,
    screen: null as MediaStream | null,
  });
  private pub: RTCPeerConnection | null = null;
  private sub: RTCPeerConnection | null = null;
  private cameraSender: RTCRtpSender | null = null;
  private tracksByMid = new Map<string, OfferedTrack>();
  private streams = new Map<string, MediaStream>();
  private iceServers: RTCIceServer[] = [];
  private offs: (() => void)[] = [];
  private offers: Promise<void> = Promise.resolve();
  private timers = new Map<RTCPeerConnection, ReturnType<typeof setTimeout>>();
  private ended = false;

  constructor(
    readonly live: LiveConnection,
    readonly ticketId: number,
  ) {}

  private get mine() {
    return (payload: { ticket_id: number }) => payload.ticket_id === this.ticketId;
  }

  async start(): Promise<void> {
    try {
      this.iceServers = (await request("get", "/api/ice-servers")).ice_servers;
    } catch {
      this.iceServers = [];
    }
    const mine = this.mine;
    this.offs.push(
      this.live.on("subscribe_offer", (offer) => {
        if (!mine(offer)) return;
        this.offers = this.offers.then(() => this.onOffer(offer)).catch((e: unknown) => this.fail(e));
      }),
      this.live.on("participant_joined", (p) => {
        if (mine(p)) this.state.participants = [...this.state.participants.filter((q) => q.user_id !== p.user_id), p];
      }),
      this.live.on("participant_left", (p) => {
        if (mine(p)) this.state.participants = this.state.participants.filter((q) => q.user_id !== p.user_id);
      }),
      this.live.on("call_closed", (c) => {
        if (mine(c)) this.end("closed");
      }),
      this.live.on("track_muted", (t) => {
        if (!mine(t)) return;
        for (const [mid, info] of this.tracksByMid) {
          if (info.track_id === t.track_id) this.tracksByMid.set(mid, { ...info, muted: t.muted });
        }
        this.refreshRemote();
      }),
      this.live.on("call_replaced", (c) => {
        if (mine(c)) this.end("replaced");
      }),
      // Every (re)connect of the socket joins again: the relay gives our place back.
      this.live.onConnect(() => {
        void this.join().catch((e: unknown) => this.fail(e));
      }),
    );
    if (!this.live.connected) {
      this.state.phase = "reconnecting";
      return; // the connect hook joins
    }
    await this.join();
  }

  /** Join (or rejoin after a dropped socket): the relay answers with a fresh subscribe offer. */
  private async join(): Promise<void> {
    if (this.ended) return;
    this.state.phase = this.state.joined ? "reconnecting" : "joining";
    if (this.sub) {
      this.sub.close();
      this.sub = null;
    }
    const ack = await this.live.request("join", { ticket_id: this.ticketId });
    if (this.ended) return;
    this.state.participants = ack.participants;
    if (ack.rejoined) this.state.rejoins += 1;
    if (!this.state.local) {
      try {
        this.state.local = markRaw(await navigator.mediaDevices.getUserMedia(callConstraints(this.state.cameraId || undefined)));
        this.state.mediaProblem = null;
      } catch (error) {
        this.state.mediaProblem = mediaProblem(error);
        throw error;
      }
      for (const t of this.state.local.getTracks()) t.enabled = !this.state.muted[t.kind === "video" ? "camera" : "microphone"];
      const settings = this.state.local.getVideoTracks()[0]?.getSettings();
      if (settings?.deviceId) this.state.cameraId = settings.deviceId;
    }
    await this.publish();
    for (const source of ["camera", "microphone"] as const) {
      if (this.state.muted[source]) await this.live.request("mute", { ticket_id: this.ticketId, source, muted: true });
    }
    this.state.phase = "connected";
    this.state.joined = true;
    this.state.error = "";
  }

  /** Publish every track we send (camera, microphone, screen), replacing the last publisher. */
  private async publish(): Promise<void> {
    const local = this.state.local;
    if (!local || this.ended) return;
    this.pub?.close();
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.pub = pc;
    const entries: [RTCRtpTransceiver, Source][] = [];
    for (const track of local.getTracks()) {
      entries.push([pc.addTransceiver(track, { direction: "sendonly" }), track.kind === "video" ? "camera" : "microphone"]);
    }
    const screenTrack = this.state.screen?.getVideoTracks()[0];
    if (screenTrack) entries.push([pc.addTransceiver(screenTrack, { direction: "sendonly" }), "screen"]);
    for (const [t, source] of entries) {
      if (source === "camera") this.cameraSender = t.sender;
      if (t.sender.track?.kind === "video") preferVp8(t);
    }
    this.watch(pc, () => this.publish());
    await pc.setLocalDescription(await pc.createOffer());
    await waitGathering(pc);
    const sources: Record<string, Source> = {};
    for (const [t, source] of entries) if (t.mid) sources[t.mid] = source;
    const answer = await this.live.request("publish", {
      ticket_id: this.ticketId, type: "offer", sdp: pc.localDescription?.sdp ?? "", sources,
    });
    if (pc !== this.pub) return;
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    for (const [t] of entries) if (t.sender.track?.kind === "video") await capBitrate(t.sender);
  }

  private async onOffer(offer: SubscribeOffer): Promise<void> {
    if (this.ended) return;
    if (!this.sub) {
      const pc = new RTCPeerConnection({ iceServers: this.iceServers });
      this.sub = pc;
      this.watch(pc, async () => {
        pc.close();
        if (this.sub === pc) this.sub = null;
        await this.live.request("resubscribe", { ticket_id: this.ticketId });
      });
    }
    const pc = this.sub;
    this.tracksByMid = new Map(offer.tracks.map((t) => [t.mid, t]));
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
    this.state.remote = remote;
  }

  /** Recover a connection whose ICE failed or stayed disconnected: publish again / resubscribe. */
  private watch(pc: RTCPeerConnection, recover: () => Promise<void>): void {
    const clear = () => {
      const timer = this.timers.get(pc);
      if (timer) clearTimeout(timer);
      this.timers.delete(pc);
    };
    const retry = () => {
      clear();
      if (this.ended || pc.signalingState === "closed" || !this.live.connected) return;
      if (pc !== this.pub && pc !== this.sub) return;
      this.state.phase = "reconnecting";
      recover().then(
        () => {
          if (!this.ended) this.state.phase = "connected";
        },
        (e: unknown) => this.fail(e),
      );
    };
    pc.addEventListener("iceconnectionstatechange", () => {
      if (pc.iceConnectionState === "failed") retry();
      else if (pc.iceConnectionState === "disconnected") {
        clear();
        this.timers.set(pc, setTimeout(() => pc.iceConnectionState === "disconnected" && retry(), DISCONNECTED_GRACE_MS));
      } else clear();
    });
  }

  async shareScreen(): Promise<void> {
    const screen = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    this.state.screen = markRaw(screen);
    this.state.sharing = true;
    screen.getVideoTracks()[0]?.addEventListener("ended", () => void this.stopScreen());
    await this.publish();
  }

  async stopScreen(): Promise<void> {
    if (!this.state.screen) return;
    for (const t of this.state.screen.getTracks()) t.stop();
    this.state.screen = null;
    this.state.sharing = false;
    await this.publish();
  }

  /** Switch camera without renegotiating: the relay keeps forwarding "camera". */
  async switchCamera(deviceId: string): Promise<void> {
    const local = this.state.local;
    if (!local) {
      this.state.cameraId = deviceId;
      return;
    }
    const fresh = await navigator.mediaDevices.getUserMedia({ video: (callConstraints(deviceId).video as MediaTrackConstraints) });
    const track = fresh.getVideoTracks()[0];
    if (!track) return;
    track.enabled = !this.state.muted.camera;
    const old = local.getVideoTracks()[0];
    if (this.cameraSender) await this.cameraSender.replaceTrack(track);
    if (old) {
      local.removeTrack(old);
      old.stop();
    }
    local.addTrack(track);
    this.state.cameraId = deviceId;
    // a new MediaStream object makes <video> elements pick the new track up
    this.state.local = markRaw(new MediaStream(local.getTracks()));
  }

  /** Turn our camera or microphone off and on; the others are told (track_muted). */
  async setMuted(source: "camera" | "microphone", muted: boolean): Promise<void> {
    const tracks = source === "camera" ? this.state.local?.getVideoTracks() : this.state.local?.getAudioTracks();
    for (const track of tracks ?? []) track.enabled = !muted;
    this.state.muted[source] = muted;
    await this.live.request("mute", { ticket_id: this.ticketId, source, muted });
  }

  cameraTrack(): MediaStreamTrack | null {
    return this.state.local?.getVideoTracks()[0] ?? null;
  }

  /** Per received track: frames decoded (video) or samples received (audio). */
  async stats(): Promise<Record<string, ReceivedStats>> {
    const out: Record<string, ReceivedStats> = {};
    for (const t of this.sub?.getTransceivers() ?? []) {
      const info = t.mid ? this.tracksByMid.get(t.mid) : undefined;
      if (!info?.track_id) continue;
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

  private fail(error: unknown): void {
    if (this.ended) return;
    if (error instanceof ApiError && (error.code === "call_not_open" || error.code === "ticket_not_found")) {
      this.end("closed");
      return;
    }
    if (error instanceof ApiError && error.code === "not_connected") {
      this.state.phase = "reconnecting";
      return;
    }
    console.error(error);
    this.state.error = error instanceof Error ? error.message : String(error);
    this.state.phase = this.state.joined ? "reconnecting" : "failed";
  }

  private end(phase: "closed" | "replaced"): void {
    this.release();
    this.state.phase = phase;
  }

  private release(): void {
    if (this.ended) return;
    this.ended = true;
    for (const off of this.offs) off();
    this.offs = [];
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.pub?.close();
    this.sub?.close();
    this.pub = this.sub = null;
    for (const t of this.state.local?.getTracks() ?? []) t.stop();
    for (const t of this.state.screen?.getTracks() ?? []) t.stop();
    this.state.remote = [];
    this.state.local = null;
    this.state.screen = null;
    this.state.sharing = false;
  }

  /** Leave the call (the page closes or the case ended here). */
  async leave(): Promise<void> {
    if (this.ended) return;
    const wasJoined = this.state.joined && this.live.connected;
    this.release();
    this.state.phase = "closed";
    if (wasJoined) {
      try {
        await this.live.request("leave", { ticket_id: this.ticketId });
      } catch {
        // the room may be closed already
      }
    }
  }
}
