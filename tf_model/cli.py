"""What the command-line scripts share: help text that shows every option's default."""

import argparse


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The script's docstring as written, then each option's help with "(default: ...)".

    An option whose default is None says in its help what happens without it."""

    def _get_help_string(self, action):
        if action.default is None:
            return action.help
        return super()._get_help_string(action)
