"""The seed README's path, `cd finetune && python deploy/predict_chnsenticorp.py ...`: runs ../deploy/predict_chnsenticorp.py."""

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from deploy.predict_chnsenticorp import main
    from ernie1.common.errors import run_cli

    sys.exit(run_cli(main))
