// Smooth playout on a lossy link: a received video whose frames arrive late (a packet repaired
// after a round trip to its publisher) freezes unless the browser holds frames a little longer
// before showing them. Each freeze of a received video raises that hold
// (RTCRtpReceiver.jitterBufferTarget) to cover it, within PLAYOUT_MAX_MS; a calm link brings it
// back down step by step. A freeze longer than PLAYOUT_COVERS_MS (an outage, a lost keyframe) is
// not what a hold can cover and leaves it alone: latency is paid only for what it buys.
// A frame that comes late without freezing the picture yet (PLAYOUT_NEAR_MS past the others, as
// a packet repaired over a village link's round trip makes it) raises the hold the same way, so
// the next one does not freeze it: on a lossy link the first freezes never come. The lateness is
// read from the receiver's inter-frame delays (their spread over the last second: one late frame
// dominates it), after PLAYOUT_WARMUP_S of decoding (a start is irregular).
// And whenever the receiver has just NACKed (lost a packet and asked for it again), the hold covers
// one repair's round trip (`repairMs`: the connection's RTT, when it is PLAYOUT_NEAR_MS or more)
// at once, warm-up or not (a calm link brings it down again as above): the first repairs of a call on a village line come before any freeze
// or late frame could teach it (bench/weak_link.py, constrained: the freezes left were those).
// bench/weak_link.py measures the effect (frozen seconds per minute on lossy links).

export const PLAYOUT_MAX_MS = 500;
export const PLAYOUT_STEP_MS = 50;
export const PLAYOUT_COVERS_MS = 800;
export const PLAYOUT_CALM_S = 30;
export const PLAYOUT_DOWN_EVERY_S = 10;
export const PLAYOUT_NEAR_MS = 100;
export const PLAYOUT_WARMUP_S = 5;

export interface Playout {
  /** what the receiver holds (ms); 0: the browser's own choice */
  targetMs: number;
  freezes: number;
  frozenS: number;
  lastFreezeAt: number;
  lastStepAt: number;
  /** the receiver's cumulative inter-frame delay figures at the last sample (null: unknown) */
  frames?: InterFrames | null;
  since?: number;
  /** the usual per-frame squared deviation (ms²): the lowest seen, creeping up 5 % a sample */
  floorMs2?: number;
}

/** inbound-rtp's framesDecoded, totalInterFrameDelay (s) and totalSquaredInterFrameDelay (s²) */
export interface InterFrames {
  decoded: number;
  total: number;
  squared: number;
}

export function newPlayout(freezes = 0, frozenS = 0): Playout {
  return { targetMs: 0, freezes, frozenS, lastFreezeAt: -Infinity, lastStepAt: -Infinity };
}

/** The summed squared deviations of the inter-frame delays between two samples (ms²) and how
 * many frames they cover; null when too few frames were decoded. */
export function spread(before: InterFrames, now: InterFrames): { squaredMs: number; n: number } | null {
  const n = now.decoded - before.decoded;
  const sum = now.total - before.total;
  const squared = now.squared - before.squared;
  if (n < 3 || sum <= 0 || squared < 0) return null;
  return { squaredMs: Math.max(0, squared - (sum * sum) / n) * 1e6, n };
}

/** How much later than the others the latest frame(s) came (ms): the root of the spread beyond
 * the link's usual jitter (`floorMs2`, per frame), which one late frame dominates (a frame D ms
 * late among n on time gives about D). */
export function lateMs(s: { squaredMs: number; n: number }, floorMs2: number): number {
  return Math.sqrt(Math.max(0, s.squaredMs - s.n * floorMs2));
}

/** The hold after one more sample of the receiver's cumulative freezeCount and
 * totalFreezesDuration (s) and its inter-frame delays (`frames`, when the browser counts them),
 * at `nowS` seconds. */
export function nextPlayout(p: Playout, freezes: number, frozenS: number, nowS: number,
  frames: InterFrames | null = null, repairMs: number | null = null): Playout {
  if (freezes < p.freezes) return newPlayout(freezes, frozenS); // a new receiver under the same track
  const next = { ...p, freezes, frozenS, frames, since: p.since ?? nowS };
  if (repairMs !== null && repairMs >= PLAYOUT_NEAR_MS) {
    // packets are being repaired over a long round trip: not a calm link; hold one repair's worth
    next.lastFreezeAt = nowS;
    if (p.targetMs < repairMs + PLAYOUT_STEP_MS) {
      next.targetMs = Math.min(PLAYOUT_MAX_MS, Math.round(repairMs) + PLAYOUT_STEP_MS);
      next.lastStepAt = nowS;
    }
  }
  if (freezes > p.freezes) {
    const meanMs = ((frozenS - p.frozenS) / (freezes - p.freezes)) * 1000;
    if (meanMs <= PLAYOUT_COVERS_MS) {
      next.targetMs = Math.min(PLAYOUT_MAX_MS, Math.max(next.targetMs + PLAYOUT_STEP_MS, Math.round(meanMs) + PLAYOUT_STEP_MS));
      next.lastStepAt = nowS;
    }
    next.lastFreezeAt = nowS;
    return next;
  }
  const s = p.frames && frames ? spread(p.frames, frames) : null;
  let late: number | null = null;
  if (s) {
    const floor = Math.min((p.floorMs2 ?? Infinity) * 1.05, s.squaredMs / s.n);
    next.floorMs2 = floor;
    if (nowS - next.since >= PLAYOUT_WARMUP_S) late = lateMs(s, floor);
  }
  if (late !== null && late >= PLAYOUT_NEAR_MS && late <= PLAYOUT_COVERS_MS) {
    // a near freeze: hold what that frame was late by, and more than now
    if (next.targetMs < late + PLAYOUT_STEP_MS) {
      next.targetMs = Math.min(PLAYOUT_MAX_MS, Math.round(late) + PLAYOUT_STEP_MS);
      next.lastStepAt = nowS;
    }
    next.lastFreezeAt = nowS;
    return next;
  }
  if (next.targetMs > 0 && nowS - next.lastFreezeAt >= PLAYOUT_CALM_S && nowS - next.lastStepAt >= PLAYOUT_DOWN_EVERY_S) {
    next.targetMs = Math.max(0, next.targetMs - PLAYOUT_STEP_MS);
    next.lastStepAt = nowS;
  }
  return next;
}
