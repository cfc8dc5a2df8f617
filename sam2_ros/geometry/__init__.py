"""3-D objects from a registered depth image, ROS-free (numpy only): depth decoding, intrinsics, per-object points,
centroids and boxes, labelled point-cloud bytes, and colour/depth pairing by stamp. Per colour frame the node calls:

    raw = pairing.match(frame.stamp)                             # DepthPairingBuffer: same/nearest stamp or None
    depth = depth_to_metres(array, encoding)                     # [H, W] float32 m, NaN = invalid
    objects = extract_objects(masks, ids, depth, Intrinsics.from_k(info.k, info.width, info.height), params)
    cloud = pack_objects(objects)                                # PointCloud2 fields, data, sizes
"""
from sam2_ros.geometry.cloud import XYZL_DTYPE, XYZL_FIELDS, PackedCloud, pack_objects, pack_xyzl, xyzl_array
from sam2_ros.geometry.depth import DEPTH_ENCODINGS, DepthError, depth_to_metres
from sam2_ros.geometry.filters import back_project, erode, mad_inliers, voxel_downsample
from sam2_ros.geometry.intrinsics import Intrinsics, IntrinsicsError, sample_mask, source_index
from sam2_ros.geometry.object_geometry import GeometryParams, ObjectGeometry, extract_object, extract_objects
from sam2_ros.geometry.pairing import DepthPairingBuffer

__all__ = [
    "DEPTH_ENCODINGS", "DepthError", "DepthPairingBuffer", "GeometryParams", "Intrinsics", "IntrinsicsError",
    "ObjectGeometry", "PackedCloud", "XYZL_DTYPE", "XYZL_FIELDS", "back_project", "depth_to_metres", "erode",
    "extract_object", "extract_objects", "mad_inliers", "pack_objects", "pack_xyzl", "sample_mask", "source_index",
    "voxel_downsample", "xyzl_array",
]
