"""The app's stylesheet. Kept in Python so it ships with the package without package-data setup."""

APP_CSS = """
#topbar {
    height: 1;
    background: $panel;
    color: $foreground;
    padding: 0 1;
}
#body { height: 1fr; }
#left {
    width: 26;
    border-right: tall $panel;
}
#steps-label { padding: 0 1; text-style: bold; color: $text-muted; }
#steps { height: 1fr; border: none; padding: 0; background: $background; }
#steps:focus { background-tint: $foreground 4%; }
#right { width: 1fr; padding: 0 1; }
#step-title { text-style: bold; margin-bottom: 0; }
#guide { margin: 0; padding: 0; }
#inferred { margin-top: 1; border: round $panel; padding: 0 1; height: auto; }
.section { text-style: bold; margin-top: 1; color: $text-muted; }
#checks { height: auto; border: none; padding: 0; background: $background; }
#checks:focus { background-tint: $foreground 4%; }
#brief { margin-top: 1; padding: 0 1; border-left: tall $panel; height: auto; }
#manual { height: auto; max-height: 10; border: none; padding: 0; background: $background; }
#manual:focus { background-tint: $foreground 4%; }
#note-preview { height: auto; padding: 0 1; color: $text-muted; }
#detail-pane { display: none; width: 1fr; padding: 0 1; border-left: tall $panel; }
MainScreen.-wide #detail-pane { display: block; }
MainScreen.-wide #brief { display: none; }
#progress { height: 1; display: none; padding: 0 1; background: $panel; }
#progress.running { display: block; }
.plot { height: 15; margin-top: 1; }
.heatmap { margin-top: 1; height: auto; }

ModalScreen { align: center middle; }
.dialog {
    width: 76;
    max-width: 96%;
    height: auto;
    max-height: 92%;
    border: thick $primary;
    background: $surface;
    padding: 0 1;
}
.dialog-title { text-style: bold; margin: 1 0 0 0; }
.dialog Select { width: 100%; }
#note-area { height: 14; max-height: 60vh; }
.buttons { height: auto; margin-top: 1; }
.buttons Button { margin-right: 2; }
#help-box { width: 84; }

#welcome, #broken, #finding, #reveal, #tour { padding: 1 2; }
#welcome-title, #broken-title { text-style: bold; margin-bottom: 1; }
#welcome-reason { margin-bottom: 1; }
#samples { height: auto; max-height: 12; border: none; background: $background; }
#broken-message { border: round $error; padding: 0 1; margin-bottom: 1; }
#exercises { height: auto; max-height: 20; border: none; background: $background; }

/* a finding with rows (issue 18): the text above, the table below with the highlighted cell in full */
FindingScreen.-rows #finding { height: auto; max-height: 45%; padding: 1 2 0 2; }
#rows { height: 1fr; padding: 0 2; }
#rows-caption { color: $text-muted; margin-top: 1; }
#rows-table { height: 1fr; min-height: 4; }
#rows-cell { height: auto; max-height: 4; padding: 0 1; border-left: tall $panel; }
#rows-note { margin-top: 1; color: $text-muted; }
"""
