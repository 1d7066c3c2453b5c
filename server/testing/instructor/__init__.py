"""The instructor's commands: a whole class graded at once, its gradebook, report, Canvas
import and the feedback handed back."""
