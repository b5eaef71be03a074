"""Diffusion maths: SD2.1's schedule, the Appearance Noise Prior, appearance inputs and samplers."""
