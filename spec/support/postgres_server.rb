# frozen_string_literal: true

# The PostgreSQL server the postgres specs use: started once per RSpec run by bin/postgres (initdb in a
# temporary folder, as an unprivileged user when root; a Unix socket there and a port on 127.0.0.1), and
# stopped when the run ends. PROCESS_SHARED_PG_URL points the specs at a server of your own instead.
# Without a server (no Debian postgresql package) or without the pg gem the specs are skipped, unless
# PROCESS_SHARED_REQUIRE_PG=1 (CI), when they fail.
require "tmpdir"
require "fileutils"

module PostgresServer
  ROOT = File.expand_path("../..", __dir__)

  class << self
    attr_reader :dir

    def missing
      return @missing if defined?(@missing)

      @missing = begin
        require "pg"
        require "process_shared/postgres"
        nil
      rescue LoadError => e
        "the pg gem (Debian's ruby-pg) is missing: #{e.message}"
      end
      @missing ||= "no PostgreSQL server (Debian's postgresql)" unless
        ENV["PROCESS_SHARED_PG_URL"] || !Dir.glob("/usr/lib/postgresql/*/bin/initdb").empty?
      @missing
    end

    def url
      @url ||= ENV["PROCESS_SHARED_PG_URL"] || start
    end

    # Restarts the server this run started (fast shutdown: every session ends).
    def restart
      raise "PROCESS_SHARED_PG_URL is set: not restarting a server this run did not start" unless @dir

      system(File.join(ROOT, "bin/postgres"), "restart", @dir, exception: true)
    end

    def connect = PG.connect(url)

    private

    def start
      @dir = Dir.mktmpdir("process_shared-pg")
      out = IO.popen([File.join(ROOT, "bin/postgres"), "start", @dir], &:read)
      raise "bin/postgres start failed" unless $?.success?

      owner = Process.pid
      # Should this run end without its at_exit (SIGKILL, a timeout), a watchdog stops the server after it. It
      # is a grandchild (the shell backgrounds it and leaves), so that no Process.wait of a spec ever sees it.
      loop = 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; "$2" stop "$3"; rm -rf "$3"'
      Process.wait(Process.spawn("sh", "-c", "(#{loop}) &", "watchdog", owner.to_s, File.join(ROOT, "bin/postgres"),
                                 @dir, in: File::NULL, out: File::NULL, err: File::NULL))
      at_exit do
        if Process.pid == owner
          system(File.join(ROOT, "bin/postgres"), "stop", @dir, out: File::NULL, err: File::NULL)
          FileUtils.rm_rf(@dir)
        end
      end
      out.strip
    end
  end
end

RSpec.configure do |config|
  config.before(:each, :postgres) do
    if (why = PostgresServer.missing)
      raise why if ENV["PROCESS_SHARED_REQUIRE_PG"] == "1"

      skip why
    end
  end
end
