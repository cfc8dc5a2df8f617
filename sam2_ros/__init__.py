"""sam2_ros: SAM 2 on live ROS 2 camera topics, with a ROS-free model and streaming tracker.

The generated interfaces (`sam2_ros.msg`, `sam2_ros.srv`) are installed next to the Python sources by CMake. When the
package is imported from a source checkout, `extend_path` lets it find them in the installed copy as well.
"""
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
__version__ = "0.1.0"
