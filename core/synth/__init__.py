"""Avatars as training data (after SynFER): synthetic expression faces with labels, action
units and boxes (core.synth.faces, core.synth.render), written as datasets (core.synth.dataset)."""
