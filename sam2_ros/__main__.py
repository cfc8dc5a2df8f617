"""`python -m sam2_ros` starts the sam2 node (same as the `sam2_node` executable)."""
import sys

from sam2_ros.ros.main import main

sys.exit(main())
