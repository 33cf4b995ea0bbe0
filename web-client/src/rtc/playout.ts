// Smooth playout on a lossy link: a received video whose frames arrive late (a packet repaired
// after a round trip to its publisher) freezes unless the browser holds frames a little longer
// before showing them. Each freeze of a received video raises that hold
// (RTCRtpReceiver.jitterBufferTarget) to cover it, within PLAYOUT_MAX_MS; a calm link brings it
// back down step by step. A freeze longer than PLAYOUT_COVERS_MS (an outage, a lost keyframe) is
// not what a hold can cover and leaves it alone: latency is paid only for what it buys.
// bench/weak_link.py measures the effect (frozen seconds per minute on lossy links).

export const PLAYOUT_MAX_MS = 500;
export const PLAYOUT_STEP_MS = 50;
export const PLAYOUT_COVERS_MS = 800;
export const PLAYOUT_CALM_S = 30;
export const PLAYOUT_DOWN_EVERY_S = 10;

export interface Playout {
  /** what the receiver holds (ms); 0: the browser's own choice */
  targetMs: number;
  freezes: number;
  frozenS: number;
  lastFreezeAt: number;
  lastStepAt: number;
}

export function newPlayout(freezes = 0, frozenS = 0): Playout {
  return { targetMs: 0, freezes, frozenS, lastFreezeAt: -Infinity, lastStepAt: -Infinity };
}

/** The hold after one more sample of the receiver's cumulative freezeCount and
 * totalFreezesDuration (s), at `nowS` seconds. */
export function nextPlayout(p: Playout, freezes: number, frozenS: number, nowS: number): Playout {
  if (freezes < p.freezes) return newPlayout(freezes, frozenS); // a new receiver under the same track
  const next = { ...p, freezes, frozenS };
  if (freezes > p.freezes) {
    const meanMs = ((frozenS - p.frozenS) / (freezes - p.freezes)) * 1000;
    if (meanMs <= PLAYOUT_COVERS_MS) {
      next.targetMs = Math.min(PLAYOUT_MAX_MS, Math.max(p.targetMs + PLAYOUT_STEP_MS, Math.round(meanMs) + PLAYOUT_STEP_MS));
      next.lastStepAt = nowS;
    }
    next.lastFreezeAt = nowS;
    return next;
  }
  if (p.targetMs > 0 && nowS - p.lastFreezeAt >= PLAYOUT_CALM_S && nowS - p.lastStepAt >= PLAYOUT_DOWN_EVERY_S) {
    next.targetMs = Math.max(0, p.targetMs - PLAYOUT_STEP_MS);
    next.lastStepAt = nowS;
  }
  return next;
}
