// Cameras by what people call them: front, rear, document camera (高拍仪).
export type CameraKind = "front" | "rear" | "document" | "other";

export interface Camera {
  deviceId: string;
  label: string;
  kind: CameraKind;
}

export function cameraKind(label: string, facing?: string): CameraKind {
  if (/document|doc\b|visuali[sz]er|高拍|scanner|文件|文档/i.test(label)) return "document";
  if (facing === "environment" || /back|rear|environment|后置/i.test(label)) return "rear";
  if (facing === "user" || /front|user|facetime|前置|integrated|webcam/i.test(label)) return "front";
  return "other";
}

/**
 * The cameras to choose from. Before the page may use a camera, browsers hide what they have:
 * Firefox lists cameras with empty ids and labels, Chromium with empty labels. So list them
 * once a camera is open (pass its track): devices without an id are left out, the open camera
 * is always in the list (with the track's label), and a camera without a label is shown by
 * number (the caller's "摄像头 1/2…"), never by its id.
 */
export async function listCameras(current?: MediaStreamTrack | null): Promise<Camera[]> {
  if (!navigator.mediaDevices?.enumerateDevices) return [];
  const devices = await navigator.mediaDevices.enumerateDevices();
  const cameras: Camera[] = devices
    .filter((d) => d.kind === "videoinput" && d.deviceId)
    .map((d) => {
      const caps = (d as MediaDeviceInfo & { getCapabilities?: () => MediaTrackCapabilities }).getCapabilities?.();
      const facing = caps?.facingMode?.[0];
      return { deviceId: d.deviceId, label: d.label, kind: cameraKind(d.label, facing) };
    });
  const settings = current?.getSettings();
  const open = cameras.find((c) => c.deviceId === settings?.deviceId);
  if (current && settings?.deviceId && !open) {
    cameras.unshift({ deviceId: settings.deviceId, label: current.label, kind: cameraKind(current.label, settings.facingMode) });
  } else if (open && !open.label && current?.label) {
    Object.assign(open, { label: current.label, kind: cameraKind(current.label, settings?.facingMode) });
  }
  return cameras;
}

/** The camera and microphone of a call: VGA keeps a community office's uplink and CPU calm. */
export function callConstraints(cameraId?: string): MediaStreamConstraints {
  return {
    video: {
      ...(cameraId ? { deviceId: { exact: cameraId } } : {}),
      width: { ideal: 640 },
      height: { ideal: 480 },
      frameRate: { ideal: 24, max: 30 },
    },
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  };
}

export type MediaProblem = "denied" | "missing" | "busy" | "insecure" | "other";

/** What went wrong with getUserMedia, in terms a person can act on. */
export function mediaProblem(error: unknown): MediaProblem {
  if (!window.isSecureContext || !navigator.mediaDevices) return "insecure";
  const name = error instanceof DOMException ? error.name : "";
  if (name === "NotAllowedError" || name === "SecurityError") return "denied";
  if (name === "NotFoundError" || name === "OverconstrainedError") return "missing";
  if (name === "NotReadableError" || name === "AbortError") return "busy";
  return "other";
}
