"""The project file (mltriage.toml -> ProjectConfig) and the user's code."""
