# frozen_string_literal: true

$LOAD_PATH.unshift File.expand_path("../lib", __dir__)
require "io/wait"
require "timeout"

begin
  require "process_shared"
rescue LoadError => e
  abort "#{e.message}\nBuild the extension first: `rake compile` (or bin/setup)."
end

# Helpers for multi-process examples. Typical use:
#
#   h = handshake
#   pid = fork_child { mutex.lock; h.signal; sleep 0.2; mutex.unlock }
#   h.wait                      # child now holds the lock
#   expect(mutex.try_lock).to be(false)
#   wait_child(pid)             # child exited 0, else the example fails
module ForkHelpers
  # A one-shot, cross-process "I got here" signal over a pipe. Create it before forking.
  class Handshake
    def initialize
      @reader, @writer = IO.pipe
    end

    def signal(byte = "!")
      @writer.write(byte[0])
      @writer.flush
    end

    # Returns the byte sent by #signal; raises if none arrives within `timeout` seconds.
    def wait(timeout: 10)
      raise Timeout::Error, "handshake: no signal within #{timeout}s" unless @reader.wait_readable(timeout)

      @reader.read(1) or raise EOFError, "handshake: the other side closed the pipe without signalling"
    end

    def close
      [@reader, @writer].each { |io| io.close unless io.closed? }
    end
  end

  def handshake
    Handshake.new.tap { |h| (@__handshakes ||= []) << h }
  end

  # Forks; the child runs the block and leaves with exit!(0), or prints the error and exit!(1).
  # exit! skips at_exit handlers, so the child never runs RSpec's reporting or hooks.
  def fork_child(&block)
    $stdout.flush
    $stderr.flush
    pid = Process.fork do
      status = 0
      begin
        block.call
      rescue SystemExit => e
        status = e.status
      rescue Exception => e
        warn "fork_child #{Process.pid}: #{e.class}: #{e.message}\n  #{Array(e.backtrace).first(15).join("\n  ")}"
        status = 1
      ensure
        $stdout.flush
        $stderr.flush
        exit!(status)
      end
    end
    (@__children ||= []) << pid
    pid
  end

  # Waits up to `timeout` seconds for the child; SIGKILLs it and fails the example if it
  # overruns, and expects exit status 0. Returns the Process::Status.
  def wait_child(pid, timeout: 20)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    loop do
      _, status = Process.waitpid2(pid, Process::WNOHANG)
      if status
        @__children&.delete(pid)
        expect(status.success?).to be(true), "child #{pid} failed: #{status.inspect}"
        return status
      end
      if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
        reap_child(pid)
        raise Timeout::Error, "child #{pid} still running after #{timeout}s: killed it"
      end
      sleep 0.01
    end
  end

  # SIGKILLs the child and reaps it (an owner dying mid-section, say).
  def kill_child(pid)
    Process.kill(:KILL, pid)
    Process.waitpid(pid)
    @__children&.delete(pid)
  end

  # A thread that runs the block and keeps its exception for #join/#value (not printed); returned once it
  # sleeps (blocked) or ended.
  def blocked_thread(&block)
    t = Thread.new do
      Thread.current.report_on_exception = false
      block.call
    end
    sleep 0.01 until t.status == "sleep" || !t.alive?
    t
  end

  def wait_children(pids, timeout: 20)
    pids.map { |pid| wait_child(pid, timeout: timeout) }
  end

  # Kills children an example left behind (e.g. after a failure) so none outlives it.
  def reap_leftovers
    (@__children || []).each { |pid| reap_child(pid) }
    (@__handshakes || []).each(&:close)
    @__children = @__handshakes = nil
  end

  private

  def reap_child(pid)
    Process.kill(:KILL, pid)
    Process.waitpid(pid)
  rescue Errno::ESRCH, Errno::ECHILD
    nil
  end
end

# What makes an example an object-lifecycle example (see `define_derived_metadata` below).
LIFECYCLE_EXAMPLES = /\bclos(e|es|ed|ing)\b|ClosedError|finaliz|\.open\b|\bGC\b|dropped|lifecycle/

RSpec.configure do |config|
  config.include ForkHelpers
  config.disable_monkey_patching!
  config.expect_with(:rspec) { |c| c.syntax = :expect }
  config.example_status_persistence_file_path = ".rspec_status"
  config.order = :random
  Kernel.srand config.seed

  # Every example gets a deadline so a deadlock fails instead of hanging the run. Override per
  # example with `timeout: seconds` metadata (or `timeout: false`); default SPEC_TIMEOUT or 60 s.
  # Timeout can only interrupt Ruby code and blocking calls that release the GVL interruptibly.
  config.around(:each) do |example|
    limit = example.metadata.fetch(:timeout) { ENV.fetch("SPEC_TIMEOUT", 60).to_f }
    limit ? Timeout.timeout(limit) { example.run } : example.run
  ensure
    reap_leftovers
  end

  # The object-lifecycle examples (close, closed objects, .open, finalizers, GC, objects dropped in a child)
  # are tagged :lifecycle by their descriptions, so new ones are included without remembering a tag.
  # `rake gc_stress` (and bin/test) runs them with GC.stress on: a GC at every allocation, to catch an
  # object freed or moved while native code still uses it.
  config.define_derived_metadata do |meta|
    meta[:lifecycle] = true if !meta.key?(:lifecycle) && meta[:full_description].to_s.match?(LIFECYCLE_EXAMPLES)
  end
  if (stress = ENV.fetch("PROCESS_SHARED_GC_STRESS", nil))
    # "full": a full GC at every allocation; otherwise a minor GC (GC.stress flag 0x01), which is what
    # catches a young object freed under native code, at a cost RSpec's own allocations can afford.
    flag = stress == "full" ? true : 0x01
    config.around(:each) do |example|
      GC.stress = flag
      example.run
    ensure
      GC.stress = false
    end
  end
end
