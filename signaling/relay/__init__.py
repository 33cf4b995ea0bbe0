"""The WebRTC media relay (SFU) on aiortc: forwards encoded media, never transcodes."""
