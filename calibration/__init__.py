"""calibration: measuring and correcting one device's impairments and storing per-device profiles."""
