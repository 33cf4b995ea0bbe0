// 网络检测 of the device check: the real media path, not an HTTP request. A WebRTC connection to
// the relay made the way a call makes one (the ICE servers of GET /api/ice-servers, so through
// TURN when a call would be), a few seconds of video sent and echoed back by the relay
// (net_check, docs/protocol.md "Link quality"), and the round trip, loss and throughput read
// from getStats. The picture is generated (moving blocks), so the check needs no camera.
import type { LiveConnection } from "@/api/socket";
import { ApiError } from "@/api/http";
import { grade, type Grade } from "./quality";

export type PathProblem = "blocked" | "turn_failed" | "busy" | "server";

export interface PathResult {
  connected: boolean;
  problem: PathProblem | null;
  viaTurn: boolean;
  rttMs: number | null;
  /** 0–1, both ways (what the echo lost) */
  loss: number | null;
  /** bit/s of video that made it there and back */
  bitrate: number | null;
  grade: Grade | null;
}

const CONNECT_MS = 10_000;
const MEASURE_S = 4;
const MAX_BITRATE = 1_500_000;

type Stats = Record<string, unknown>;
const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);

function noise(): { track: MediaStreamTrack; stop: () => void } {
  const canvas = document.createElement("canvas");
  canvas.width = 640; // at 320×240 browsers cap the encoder near 0.6 Mbit/s
  canvas.height = 480;
  const ctx = canvas.getContext("2d");
  const draw = () => {
    if (!ctx) return;
    for (let x = 0; x < 640; x += 16) {
      for (let y = 0; y < 480; y += 16) {
        ctx.fillStyle = `hsl(${Math.floor(Math.random() * 360)} 70% ${20 + Math.floor(Math.random() * 60)}%)`;
        ctx.fillRect(x, y, 16, 16);
      }
    }
  };
  draw();
  const timer = setInterval(draw, 66);
  const stream = canvas.captureStream(15);
  const track = stream.getVideoTracks()[0]!;
  return {
    track,
    stop: () => {
      clearInterval(timer);
      track.stop();
    },
  };
}

function gathered(pc: RTCPeerConnection, ms = 3000): Promise<void> {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
    setTimeout(resolve, ms);
  });
}

function connected(pc: RTCPeerConnection, ms: number): Promise<boolean> {
  const ok = () => pc.iceConnectionState === "connected" || pc.iceConnectionState === "completed";
  if (ok()) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    pc.addEventListener("iceconnectionstatechange", () => {
      if (ok()) {
        clearTimeout(timer);
        resolve(true);
      } else if (pc.iceConnectionState === "failed") {
        clearTimeout(timer);
        resolve(false);
      }
    });
  });
}

async function read(pc: RTCPeerConnection): Promise<Stats[]> {
  const out: Stats[] = [];
  (await pc.getStats()).forEach((s: Stats) => out.push(s));
  return out;
}

function selectedPair(stats: Stats[]): Stats | undefined {
  const transport = stats.find((s) => s.type === "transport" && s.selectedCandidatePairId);
  return (
    stats.find((s) => s.type === "candidate-pair" && transport && s.id === transport.selectedCandidatePairId) ??
    stats.find((s) => s.type === "candidate-pair" && s.selected === true) ?? // Firefox
    stats.find((s) => s.type === "candidate-pair" && s.nominated && s.state === "succeeded")
  );
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)]! : null;
};

/** Measure the path to the relay; never throws (a problem is part of the result). */
export async function measurePath(live: LiveConnection, config: RTCConfiguration, seconds = MEASURE_S): Promise<PathResult> {
  const turn = (config.iceServers ?? []).some((s) => [s.urls].flat().some((u) => /^turns?:/i.test(u)));
  const result: PathResult = { connected: false, problem: null, viaTurn: false, rttMs: null, loss: null, bitrate: null, grade: null };
  const source = noise();
  const pc = new RTCPeerConnection(config);
  let started = false;
  try {
    const transceiver = pc.addTransceiver(source.track, { direction: "sendrecv" });
    const codecs = RTCRtpSender.getCapabilities?.("video")?.codecs ?? [];
    const rank = (c: RTCRtpCodec) => (/vp8/i.test(c.mimeType) ? 0 : /rtx/i.test(c.mimeType) ? 1 : 2);
    if (codecs.length && transceiver.setCodecPreferences) transceiver.setCodecPreferences([...codecs].sort((a, b) => rank(a) - rank(b)));
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    let answer;
    try {
      answer = await live.request("net_check", { type: "offer", sdp: pc.localDescription?.sdp ?? "" });
    } catch (error) {
      result.problem = error instanceof ApiError && error.code === "net_check_busy" ? "busy" : "server";
      return result;
    }
    started = true;
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    const params = transceiver.sender.getParameters();
    if (!params.encodings?.length) params.encodings = [{}];
    for (const e of params.encodings) e.maxBitrate = MAX_BITRATE;
    await transceiver.sender.setParameters(params).catch(() => undefined);
    if (!(await connected(pc, CONNECT_MS))) {
      result.problem = turn ? "turn_failed" : "blocked";
      return result;
    }
    result.connected = true;
    const rtts: number[] = [];
    const samples: { at: number; received: number; lost: number; bytes: number }[] = [];
    for (let i = 0; i <= seconds; i++) {
      if (i) await new Promise((r) => setTimeout(r, 1000));
      const stats = await read(pc);
      const pair = selectedPair(stats);
      if (pair && typeof pair.currentRoundTripTime === "number") rtts.push(pair.currentRoundTripTime * 1000);
      const local = pair ? stats.find((s) => s.id === pair.localCandidateId) : undefined;
      if (local) result.viaTurn = local.candidateType === "relay";
      const echo = stats.find((s) => s.type === "inbound-rtp" && s.kind === "video");
      samples.push({ at: performance.now(), received: num(echo?.packetsReceived), lost: num(echo?.packetsLost), bytes: num(echo?.bytesReceived) });
    }
    result.rttMs = median(rtts);
    // the first second is the start (the encoder ramping up, the echo's first keyframe)
    const first = samples[1] ?? samples[0]!;
    const last = samples[samples.length - 1]!;
    const received = last.received - first.received;
    const lost = Math.max(0, last.lost - first.lost);
    result.loss = received + lost > 0 ? lost / (received + lost) : received === 0 && last.received === 0 ? 1 : 0;
    const before = samples[Math.max(0, samples.length - 3)]!;
    result.bitrate = last.at > before.at ? ((last.bytes - before.bytes) * 8 * 1000) / (last.at - before.at) : null;
    result.grade = grade({ loss: result.loss, rttMs: result.rttMs, bitrate: result.bitrate, fps: null, limited: true });
    return result;
  } finally {
    source.stop();
    pc.close();
    if (started) await live.request("net_check_end", {}).catch(() => undefined);
  }
}
