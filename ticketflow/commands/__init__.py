"""One module per `ticketflow` subcommand, each exposing `register(subparsers)`."""
