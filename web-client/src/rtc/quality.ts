// Link quality (docs/protocol.md "Link quality"): good / fair / poor for every tile of a call,
// from getStats once a second. The thresholds are the relay's too (signaling/relay/quality.py;
// tests/test_link_quality.py checks the numbers match).
//
// A received tile: its track's inbound-rtp (loss, bitrate, frame rate, jitter) and the
// subscribing connection's candidate pair (round trip); a video the relay paused for our link is
// poor. The self view: the publishing connection's remote-inbound-rtp (loss and round trip as
// the relay reports them), outbound-rtp (bitrate, frame rate) and qualityLimitationReason.
// Bitrate counts only where the network is what holds it down (a still picture is cheap): a
// sender that says it is limited by bandwidth, or a received video arriving at under 10 fps.
import { reactive } from "vue";
import { newPlayout, nextPlayout, type Playout } from "./playout";

export const FAIR_LOSS = 0.03;
export const POOR_LOSS = 0.1;
export const FAIR_RTT_MS = 250;
export const POOR_RTT_MS = 500;
export const FAIR_BPS = 300_000;
export const POOR_BPS = 120_000;
export const LOW_FPS = 10;

export type Grade = "good" | "fair" | "poor";
const ORDER: Grade[] = ["good", "fair", "poor"];

export interface LinkFigures {
  /** 0–1 over the last interval */
  loss: number | null;
  rttMs: number | null;
  bitrate: number | null;
  fps: number | null;
  jitterMs?: number | null;
  /** the bitrate counts: the network, not the picture, holds it down */
  limited?: boolean;
  /** the relay paused this video for our link (video_paused) */
  paused?: boolean;
}

export interface LinkQuality extends LinkFigures {
  grade: Grade;
}

export function worst(...grades: Grade[]): Grade {
  return grades.reduce<Grade>((a, b) => (ORDER.indexOf(b) > ORDER.indexOf(a) ? b : a), "good");
}

/** The grade of one link: the worst of its loss, round trip and (when limited) bitrate. */
export function grade(f: LinkFigures): Grade {
  const parts: Grade[] = [];
  if (f.paused) parts.push("poor");
  if (f.loss !== null) parts.push(f.loss >= POOR_LOSS ? "poor" : f.loss >= FAIR_LOSS ? "fair" : "good");
  if (f.rttMs !== null) parts.push(f.rttMs >= POOR_RTT_MS ? "poor" : f.rttMs >= FAIR_RTT_MS ? "fair" : "good");
  if (f.limited && f.bitrate !== null) parts.push(f.bitrate < POOR_BPS ? "poor" : f.bitrate < FAIR_BPS ? "fair" : "good");
  return worst(...parts);
}

/** Cumulative counters of one received track at one moment (from its inbound-rtp). */
export interface InboundSample {
  at: number;
  packetsReceived: number;
  packetsLost: number;
  bytesReceived: number;
  framesDecoded: number;
  jitter: number | null;
}

/** Cumulative counters of the camera we send at one moment (outbound-rtp, remote-inbound-rtp). */
export interface OutboundSample {
  at: number;
  bytesSent: number;
  framesEncoded: number;
  fractionLost: number | null;
  rtt: number | null;
  limitation: string | null;
}

const rate = (bytes: number, ms: number) => (ms > 0 ? (bytes * 8 * 1000) / ms : null);

/** What a received track's link did between two samples. */
export function inboundFigures(prev: InboundSample | undefined, cur: InboundSample, rttMs: number | null, paused = false): LinkFigures {
  if (!prev || cur.at <= prev.at) return { loss: null, rttMs, bitrate: null, fps: null, paused };
  const ms = cur.at - prev.at;
  const received = Math.max(0, cur.packetsReceived - prev.packetsReceived);
  const lost = Math.max(0, cur.packetsLost - prev.packetsLost);
  const fps = (Math.max(0, cur.framesDecoded - prev.framesDecoded) * 1000) / ms;
  return {
    loss: received + lost > 0 ? lost / (received + lost) : null,
    rttMs,
    bitrate: rate(Math.max(0, cur.bytesReceived - prev.bytesReceived), ms),
    fps,
    jitterMs: cur.jitter === null ? null : cur.jitter * 1000,
    limited: !paused && received > 0 && fps < LOW_FPS,
    paused,
  };
}

/** What our own sending link did between two samples. */
export function outboundFigures(prev: OutboundSample | undefined, cur: OutboundSample): LinkFigures {
  const rttMs = cur.rtt === null ? null : cur.rtt * 1000;
  if (!prev || cur.at <= prev.at) return { loss: cur.fractionLost, rttMs, bitrate: null, fps: null };
  const ms = cur.at - prev.at;
  return {
    loss: cur.fractionLost,
    rttMs,
    bitrate: rate(Math.max(0, cur.bytesSent - prev.bytesSent), ms),
    fps: (Math.max(0, cur.framesEncoded - prev.framesEncoded) * 1000) / ms,
    limited: cur.limitation === "bandwidth",
  };
}

type Stats = Record<string, unknown>;
const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

function each(report: RTCStatsReport): Stats[] {
  const out: Stats[] = [];
  report.forEach((s: Stats) => out.push(s));
  return out;
}

/** The round trip of a connection's selected candidate pair (ms). */
export function pairRttMs(stats: Stats[]): number | null {
  const transport = stats.find((s) => s.type === "transport" && s.selectedCandidatePairId);
  const pair =
    stats.find((s) => s.type === "candidate-pair" && transport && s.id === transport.selectedCandidatePairId) ??
    stats.find((s) => s.type === "candidate-pair" && s.selected === true) ?? // Firefox
    stats.find((s) => s.type === "candidate-pair" && s.nominated && s.state === "succeeded");
  const rtt = num(pair?.currentRoundTripTime);
  return rtt === null ? null : rtt * 1000;
}

export interface QualitySources {
  pub: RTCPeerConnection | null;
  sub: RTCPeerConnection | null;
  /** the camera track we publish */
  camera: MediaStreamTrack | null;
  /** received videos: their track id and their track */
  remote: { trackId: string; track: MediaStreamTrack }[];
  /** track id → paused for our link */
  paused: Record<string, boolean>;
}

export const SELF = "self";

/** Samples a call's connections once a second; `links` holds a LinkQuality per received video
 * track id and for `SELF`. */
export class QualitySampler {
  readonly links = reactive<Record<string, LinkQuality>>({});
  private inbound = new Map<string, InboundSample>();
  private playout = new Map<string, Playout>();
  private nacks = new Map<string, number>();
  private outbound: OutboundSample | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private busy = false;

  constructor(private readonly sources: () => QualitySources) {}

  start(intervalMs = 1000): void {
    this.stop();
    this.timer = setInterval(() => void this.sample(), intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const src = this.sources();
      const seen = new Set<string>();
      if (src.sub) {
        for (const r of src.remote) {
          const stats = await this.read(src.sub, r.track);
          if (!stats) continue;
          const inbound = stats.find((s) => s.type === "inbound-rtp" && s.kind === "video");
          if (!inbound) continue;
          const cur: InboundSample = {
            at: num(inbound.timestamp) ?? Date.now(),
            packetsReceived: num(inbound.packetsReceived) ?? 0,
            packetsLost: num(inbound.packetsLost) ?? 0,
            bytesReceived: num(inbound.bytesReceived) ?? 0,
            framesDecoded: num(inbound.framesDecoded) ?? 0,
            jitter: num(inbound.jitter),
          };
          this.smooth(src.sub, r.track, r.trackId, inbound, pairRttMs(stats));
          const figures = inboundFigures(this.inbound.get(r.trackId), cur, pairRttMs(stats), !!src.paused[r.trackId]);
          this.inbound.set(r.trackId, cur);
          this.links[r.trackId] = { ...figures, grade: grade(figures) };
          seen.add(r.trackId);
        }
      }
      if (src.pub && src.camera) {
        const stats = await this.read(src.pub, src.camera);
        const out = stats?.find((s) => s.type === "outbound-rtp" && s.kind === "video");
        if (stats && out) {
          const remote = stats.find((s) => s.type === "remote-inbound-rtp" && s.kind === "video");
          const cur: OutboundSample = {
            at: num(out.timestamp) ?? Date.now(),
            bytesSent: num(out.bytesSent) ?? 0,
            framesEncoded: num(out.framesEncoded) ?? 0,
            fractionLost: num(remote?.fractionLost),
            rtt: num(remote?.roundTripTime) ?? (pairRttMs(stats) ?? NaN) / 1000,
            limitation: typeof out.qualityLimitationReason === "string" ? out.qualityLimitationReason : null,
          };
          if (cur.rtt !== null && Number.isNaN(cur.rtt)) cur.rtt = null;
          const figures = outboundFigures(this.outbound, cur);
          this.outbound = cur;
          this.links[SELF] = { ...figures, grade: grade(figures) };
          seen.add(SELF);
        }
      }
      for (const key of Object.keys(this.links)) {
        if (!seen.has(key)) {
          delete this.links[key];
          this.inbound.delete(key);
          this.playout.delete(key);
          this.nacks.delete(key);
        }
      }
    } finally {
      this.busy = false;
    }
  }

  /** The receiver's playout hold follows its freezes (playout.ts). */
  private smooth(pc: RTCPeerConnection, track: MediaStreamTrack, trackId: string, inbound: Stats, rttMs: number | null): void {
    const freezes = num(inbound.freezeCount);
    const frozenS = num(inbound.totalFreezesDuration);
    if (freezes === null || frozenS === null) return; // a browser that does not count freezes
    const receiver = pc.getReceivers().find((r) => r.track === track) as
      | (RTCRtpReceiver & { jitterBufferTarget?: number | null })
      | undefined;
    if (!receiver || !("jitterBufferTarget" in receiver)) return;
    const before = this.playout.get(trackId) ?? newPlayout(freezes, frozenS);
    const decoded = num(inbound.framesDecoded);
    const total = num(inbound.totalInterFrameDelay);
    const squared = num(inbound.totalSquaredInterFrameDelay);
    const frames = decoded !== null && total !== null && squared !== null ? { decoded, total, squared } : null;
    // packets repaired since the last sample (this receiver NACKed): a hold for the repair's trip
    const nacks = num(inbound.nackCount) ?? 0;
    const nacked = nacks > (this.nacks.get(trackId) ?? 0);
    this.nacks.set(trackId, nacks);
    const after = nextPlayout(before, freezes, frozenS, performance.now() / 1000, frames, nacked ? rttMs : null);
    this.playout.set(trackId, after);
    if (after.targetMs !== before.targetMs) {
      try {
        receiver.jitterBufferTarget = after.targetMs || null;
      } catch {
        // out of the browser's range: keep its own
      }
    }
  }

  private async read(pc: RTCPeerConnection, track: MediaStreamTrack): Promise<Stats[] | null> {
    if (pc.signalingState === "closed") return null;
    try {
      return each(await pc.getStats(track));
    } catch {
      return null; // the track left this connection between two samples
    }
  }
}
