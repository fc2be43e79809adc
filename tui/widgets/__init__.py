"""The main screen's widgets, one per module: the top bar, the step list, the step's title and guide,
what mltriage understood of the problem, the check list, the finding's brief and detail pane, the
manual checklist, the note preview, the run progress and the plots."""

from .check_list import CheckList
from .checklist import Checklist
from .detail_pane import DetailPane
from .finding_brief import FindingBrief
from .note_preview import NotePreview
from .problem_summary import ProblemSummary
from .run_progress import RunProgress
from .step_guide import StepGuide
from .step_list import StepList, step_options
from .step_pane import StepPane
from .step_title import StepTitle
from .topbar import TopBar, topbar_text

# plots.py is not imported here: plotext loads with the first plot, not at start-up.
__all__ = ["CheckList", "Checklist", "DetailPane", "FindingBrief", "NotePreview", "ProblemSummary", "RunProgress",
           "StepGuide", "StepList", "StepPane", "StepTitle", "TopBar", "step_options", "topbar_text"]
