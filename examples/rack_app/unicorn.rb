# frozen_string_literal: true

# Unicorn: `PORT=8080 unicorn -c examples/rack_app/unicorn.rb examples/rack_app/config.ru`
# The master loads the app once (preload_app); each worker opens the named objects after fork.
# HUP (reload) and USR2 + QUIT (re-exec) keep them: named objects live on in /dev/shm.
require_relative "app"

worker_processes Integer(ENV.fetch("PS_EXAMPLE_WORKERS", "4"))
listen "127.0.0.1:#{ENV.fetch("PORT", "8080")}", backlog: 1024
preload_app true
timeout 60
pid ENV["PS_EXAMPLE_PIDFILE"] if ENV["PS_EXAMPLE_PIDFILE"] # USR2 renames it to *.oldbin

# Before fork (in the master) create nothing that must survive a restart; an anonymous object made here is
# shared with this master's workers but replaced on HUP and lost on USR2.
after_fork do |_server, _worker|
  ExampleApp.after_fork # opens the named objects, starts the job consumer thread
end
