# frozen_string_literal: true

require "fileutils"
require "open3"
require "rbconfig"
require "tmpdir"

# The README's examples, the seed examples and a tour of every public method, run in a child Ruby under rbs's
# runtime type check (`ruby -rrbs/test/setup`): every call of a ProcessShared method that sig/ declares has its
# arguments, block and return value checked against the signature; a mismatch raises
# RBS::Test::Tester::TypeError (in the process, or forked child, that made the call).
RSpec.describe "the RBS signatures (sig/) at run time", :rbs do
  root = File.expand_path("..", __dir__)
  sig = File.join(root, "sig")
  lib = File.join(root, "lib")
  rbs_available = system(RbConfig.ruby, "-e", 'require "rbs"; require "rbs/test"', out: File::NULL, err: File::NULL)

  before { skip "rbs (with rbs/test/setup) is not installed for this Ruby" unless rbs_available }

  # Runs `script` under the type check with signatures from `sig_dir`: [stdout, stderr, status].
  def run_checked(script, sig_dir, timeout: 180)
    env = {
      "RBS_TEST_TARGET" => "ProcessShared::*",
      "RBS_TEST_OPT" => "-I #{sig_dir}",
      "RBS_TEST_LOGLEVEL" => "error",
      "RBS_TEST_SAMPLE_SIZE" => "ALL",
      "RBS_TEST_DOUBLE_SUITE" => "rspec",
      "RUBYOPT" => nil
    }
    Open3.popen3(env, RbConfig.ruby, "-rrbs/test/setup", script) do |stdin, out, err, thread|
      stdin.close
      readers = [Thread.new { out.read }, Thread.new { err.read }]
      unless thread.join(timeout)
        Process.kill(:KILL, thread.pid)
        raise "#{script} did not finish within #{timeout} s"
      end
      [readers[0].value, readers[1].value, thread.value]
    end
  end

  # The ```ruby blocks of the README, with the line each starts on.
  def readme_blocks(root)
    blocks = []
    current = nil
    File.readlines(File.join(root, "README.md")).each_with_index do |line, i|
      if current.nil? && line.start_with?("```ruby")
        current = [i + 2, +""]
      elsif current && line.start_with?("```")
        blocks << current
        current = nil
      elsif current
        current[1] << line
      end
    end
    # A server's loop never ends: spec/cli_spec.rb runs the README's exporter against a real client. The
    # server recipe's blocks are Unicorn and Puma configs (spec/servers_spec.rb runs examples/rack_app). The
    # PostgreSQL example needs a server: spec/postgres_spec.rb runs it against the specs' own.
    blocks.reject do |_, code|
      code.include?("server.accept") || code.match?(/after_fork|on_worker_boot/) ||
        code.include?("process_shared/postgres")
    end
  end

  # A script that runs every README block in a binding of its own. The examples leave their helpers to the
  # reader (`work`, `urls`, `repair`...): stand-ins are defined here; `{ ... }` becomes `{ nil }`; named
  # objects get names of this run, removed at the end.
  def readme_script(root, lib, dir)
    prefix = "rbs-spec-#{Process.pid}"
    blocks = readme_blocks(root).map do |line, code|
      [line, code.gsub("{ ... }", "{ nil }").gsub('"myapp.', "\"#{prefix}.")]
    end
    path = File.join(dir, "readme_examples.rb")
    File.write(path, <<~RUBY)
      $LOAD_PATH.unshift #{lib.inspect}
      require "process_shared"

      def work = nil
      def compute = nil
      def done? = true
      def read_settings = nil
      def reload_settings = nil
      def run(_job) = nil
      def repair(_state) = nil
      def update(_state) = nil
      def shared_state = nil
      def urls = %w[a b c]
      def fresh_binding = binding

      failed = []
      #{blocks.inspect}.each do |line, code|
        b = fresh_binding
        b.local_variable_set(:mutex, ProcessShared::Mutex.new) # the last example uses the one made before
        eval(code, b, "README.md", line) # rubocop:disable Security/Eval
        Process.waitall.each { |pid, status| failed << [line, pid, status] unless status.success? }
      end
      names = %w[#{prefix}.deploy #{prefix}.slots]
      names.each { |n| ProcessShared::Semaphore.unlink(n) if ProcessShared::Semaphore.exist?(n) }
      abort "children failed: \#{failed.inspect}" unless failed.empty?
      puts "README examples: #{blocks.size} blocks ran"
    RUBY
    path
  end

  def expect_clean_run(out, err, status, what)
    expect(err).not_to include("RBS::Test::Tester::TypeError"), "#{what}: a call did not match sig/:\n#{err}"
    expect(status.success?).to be(true), "#{what} failed (#{status}):\n#{out}\n#{err}"
  end

  it "runs the README's examples without a type error", timeout: 200 do
    Dir.mktmpdir("rbs-spec") do |dir|
      out, err, status = run_checked(readme_script(root, lib, dir), sig)
      expect_clean_run(out, err, status, "the README's examples")
      expect(out).to match(/README examples: \d+ blocks ran/)
    end
  end

  %w[readme_usage.rb readme_transfer.rb].each do |name|
    it "runs the seed example #{name} without a type error", timeout: 200 do
      out, err, status = run_checked(File.join(__dir__, "seed", name), sig)
      expect_clean_run(out, err, status, name)
      expect(out).not_to be_empty
    end
  end

  it "runs a tour calling every public method (spec/support/rbs_tour.rb) without a type error", timeout: 200 do
    out, err, status = run_checked(File.join(__dir__, "support", "rbs_tour.rb"), sig)
    expect_clean_run(out, err, status, "the tour")
    expect(out).to eq("tour: ok\n")
  end

  it "reports a call that does not match its signature (the check is live)", timeout: 200 do
    Dir.mktmpdir("rbs-spec") do |dir|
      wrong = File.join(dir, "sig")
      FileUtils.mkdir_p(wrong)
      text = File.read(File.join(sig, "process_shared.rbs"))
      declared = "    def try_lock: (?timeout timeout) -> bool\n"
      expect(text).to include(declared)
      File.write(File.join(wrong, "process_shared.rbs"),
                 text.sub(declared, "    def try_lock: (?timeout timeout) -> Integer\n"))
      script = File.join(dir, "try_lock.rb")
      File.write(script, <<~RUBY)
        $LOAD_PATH.unshift #{lib.inspect}
        require "process_shared"
        ProcessShared::Mutex.new.try_lock
      RUBY
      _out, err, status = run_checked(script, wrong)
      expect(status.success?).to be(false)
      expect(err).to include("RBS::Test::Tester::TypeError").and include("try_lock")
    end
  end
end
