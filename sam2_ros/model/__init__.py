"""SAM 2 / 2.1 in plain PyTorch: no ROS, no Hydra, no hub."""
