"""The app's screens, one per module; their keys come from the action table (tui/actions.py)."""

from .broken import BrokenProjectScreen
from .export import ExportScreen
from .finding import FindingScreen
from .help import HelpScreen
from .main import MainScreen
from .note import NoteScreen
from .problem import ProblemScreen
from .reveal import RevealScreen
from .text import TextScreen
from .tour import TourScreen
from .welcome import WelcomeScreen

__all__ = ["BrokenProjectScreen", "ExportScreen", "FindingScreen", "HelpScreen", "MainScreen", "NoteScreen",
           "ProblemScreen", "RevealScreen", "TextScreen", "TourScreen", "WelcomeScreen"]
