"""Run a tf.data service server for `tools.train --data_service` (docs/scale_out.md).

  python -m tools.data_service --role=dispatcher --port=5050 [--work_dir=DIR]
  python -m tools.data_service --role=worker --dispatcher=HOST:5050 --port=5051 \
      --worker_address=THIS_HOST:5051

Prints the address it serves, then serves until killed (SIGTERM / Ctrl-C).
"""

import sys

from absl import app, flags

from deepisp_tf.data import service

FLAGS = flags.FLAGS
flags.DEFINE_enum("role", None, ["dispatcher", "worker"], "Which server to start.")
flags.DEFINE_integer("port", 0, "Port to listen on (0: any free port).")
flags.DEFINE_string("dispatcher", None, "Worker: the dispatcher's host:port.")
flags.DEFINE_string("worker_address", None, "Worker: host:port trainers use to reach it.")
flags.DEFINE_string("work_dir", None, "Dispatcher: journal folder (fault-tolerant restarts).")
flags.DEFINE_integer("heartbeat_ms", 1000, "Worker: heartbeat interval to the dispatcher.")
flags.mark_flag_as_required("role")


def main(argv):
    del argv
    config = service.ServiceConfig(port=FLAGS.port, dispatcher=FLAGS.dispatcher,
                                   worker_address=FLAGS.worker_address,
                                   work_dir=FLAGS.work_dir, heartbeat_ms=FLAGS.heartbeat_ms)
    try:
        if FLAGS.role == "dispatcher":
            server = service.start_dispatcher(config)
            print(f"dispatcher serving {server.target} (trainers: --data_service={server.target})",
                  flush=True)
        else:
            server = service.start_worker(config)
            print(f"worker serving for dispatcher {config.dispatcher}", flush=True)
    except ValueError as error:
        sys.exit(f"data_service: {error}")
    server.join()


if __name__ == "__main__":
    app.run(main)
