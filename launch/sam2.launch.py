"""Start the sam2 node.

    ros2 launch sam2_ros sam2.launch.py image:=/camera/image_raw [checkpoint:=/path/sam2.1_hiera_tiny.pt]
        [model_config:=sam2.1_hiera_t] [params_file:=...] [namespace:=...] [depth:=...]

Only names and files are wired here; every tunable lives in the parameters file (default: config/sam2.yaml).
checkpoint and model_config, when given, override the file's (the two a deployment always sets).
camera_info is remapped next to the image (…/image_raw -> …/camera_info), as image_transport does. depth (used when
the parameters say use_depth: true) is remapped only when given: registered depth has no fixed place next to the image.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode


def _node(context):
    image = LaunchConfiguration("image").perform(context)
    camera_info = LaunchConfiguration("camera_info").perform(context) or \
        (image.rsplit("/", 1)[0] + "/camera_info" if "/" in image else "camera_info")
    remappings = [("image", image), ("image/compressed", image + "/compressed"), ("camera_info", camera_info)]
    depth = LaunchConfiguration("depth").perform(context)
    if depth:
        remappings.append(("depth", depth))
    overrides = {"checkpoint": LaunchConfiguration("checkpoint").perform(context),
                 "model_config": LaunchConfiguration("model_config").perform(context)}
    overrides = {name: value for name, value in overrides.items() if value}
    return [LifecycleNode(
        package="sam2_ros",
        executable="sam2_node",
        name="sam2",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        parameters=[LaunchConfiguration("params_file")] + ([overrides] if overrides else []),
        remappings=remappings,
    )]


def generate_launch_description():
    default_params = os.path.join(get_package_share_directory("sam2_ros"), "config", "sam2.yaml")
    return LaunchDescription([
        DeclareLaunchArgument("image", default_value="/camera/image_raw",
                              description="sensor_msgs/Image topic to segment"),
        DeclareLaunchArgument("camera_info", default_value="",
                              description="sensor_msgs/CameraInfo topic (empty: next to the image topic)"),
        DeclareLaunchArgument("depth", default_value="",
                              description="sensor_msgs/Image depth registered to image, for use_depth (empty: not "
                                          "remapped), e.g. /camera/aligned_depth_to_color/image_raw"),
        DeclareLaunchArgument("params_file", default_value=default_params,
                              description="parameters file (see config/sam2.yaml)"),
        DeclareLaunchArgument("checkpoint", default_value="",
                              description="Meta's .pt checkpoint (empty: the parameters file's checkpoint)"),
        DeclareLaunchArgument("model_config", default_value="",
                              description="model config, e.g. sam2.1_hiera_t or edgetam (empty: the file's)"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node"),
        OpaqueFunction(function=_node),
    ])
