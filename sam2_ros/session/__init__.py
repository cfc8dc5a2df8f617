"""The ROS-free tracking session: tracker + object registry + the frame / prompt / detection rules (session.py), the
inference thread it runs on (worker.py), the backend-built tracker it drives (engine.py), the prompt requests it
takes (requests.py). The ROS node converts messages into these calls and publishes what comes back."""
from sam2_ros.session.requests import PromptArgs, PromptError, PromptRequest, prompt_args
from sam2_ros.session.session import PromptAnswer, SessionOptions, SessionOutputs, TrackingSession
from sam2_ros.session.worker import InferenceWorker, JobRefused, ReceivedFrame

__all__ = ["InferenceWorker", "JobRefused", "PromptAnswer", "PromptArgs", "PromptError", "PromptRequest",
           "ReceivedFrame", "SessionOptions", "SessionOutputs", "TrackingSession", "prompt_args"]
