"""The networks: 3D U-Net main branch, AppearNet, and the combined MicroCinema model."""
