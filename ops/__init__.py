"""Operations: the `faces` command, running the stack, the HTTP server. Imported by no other part of the product (streams/, consumers/, producer/, schemas/, models/ never import ops/).

Four rooms. cli/ may import the three others; jobs/ may import supervise/; supervise/ and web/
import no other room. All may import the shared modules here:
    cli/        the `faces` command: typer app, options, one module per group of commands
    jobs/       what a command runs: run, up, replay, result look-up, export, visualize, which Redis
    supervise/  processes: the worker pool, one worker process, counts per stage, the API child
    web/        the HTTP API and web page of `faces serve` / `faces browse`
Shared by the rooms: exits.py (exit codes), failures.py (a failure as one line), interrupts.py
(Ctrl-C / SIGTERM), settings.py (AppSettings), metrics.py (Prometheus). Logging configuration is
faces/logs.py, which every layer may import.
"""
