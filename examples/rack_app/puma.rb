# frozen_string_literal: true

# Puma cluster: `PORT=8080 puma -C examples/rack_app/puma.rb examples/rack_app/config.ru`
# 4 workers x 4 threads. preload_app! stays off so that a phased restart (SIGUSR1) works: each worker loads
# the app itself and opens the named objects on boot; they survive phased, hot (USR2) and HUP restarts.
require_relative "app"

workers Integer(ENV.fetch("PS_EXAMPLE_WORKERS", "4"))
threads 4, 4
bind "tcp://127.0.0.1:#{ENV.fetch("PORT", "8080")}"
pidfile ENV["PS_EXAMPLE_PIDFILE"] if ENV["PS_EXAMPLE_PIDFILE"]
worker_timeout 60

on_worker_boot do
  ExampleApp.after_fork # opens the named objects, starts the job consumer thread
end
