"""spark-submit entry point of `orders-etl maintain`: same flags, same exit codes."""

from orders_etl.cli import run_job

if __name__ == "__main__":
    run_job("maintain")
