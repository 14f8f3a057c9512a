"""What a card shows: the one place that reads loyalty, offers and campaigns together.

The domains below it (loyalty, offers, campaigns) mark passes changed through
``walletpass.passes``; this layer turns a pass and their state into the variables a
template renders, and hands them to ``walletpass.passes`` to build the .pkpass. The entry
points (the web services, the public pages, Google's sync) ask here, never the reverse.
"""
