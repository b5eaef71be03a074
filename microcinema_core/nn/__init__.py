"""Building blocks of the 3D U-Net (spatial SD2.1 layers, temporal layers, SPADE)."""
