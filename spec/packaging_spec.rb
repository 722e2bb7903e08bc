# frozen_string_literal: true

require "json"
require "rbconfig"
require "rubygems/package"
require "tempfile"
require "tmpdir"

# Builds the gem from this checkout, installs it as a user would (extconf.rb + make, via
# `gem install`) into a throwaway GEM_HOME, then requires it from a clean environment: no -Ilib,
# no RUBYLIB, not from the repo directory.
#
# It is slow, so `rake spec` skips it; `rake package_test` runs it alone and bin/test runs it.
# The install compiles both crates again from the unpacked gem. To keep that to about a minute
# it builds with CARGO_TARGET_DIR=<repo>/target, so the registry crates (magnus, rb-sys, bindgen,
# ...) already compiled by `rake compile` are reused, and with CARGO_NET_OFFLINE=true, as nothing
# needs downloading. Side effect: it rewrites target/release/libprocess_shared.so from the same
# sources, which is harmless (`rake compile` copies whatever cargo deems fresh).
RSpec.describe "the packaged gem", :packaging, timeout: 30 * 60 do
  let(:root) { File.expand_path("..", __dir__) }

  # Runs cmd in its own process group, killing the whole group if it overruns.
  def run!(env, *cmd, chdir:, timeout:, clean_env: false)
    log = Tempfile.new("process_shared-pkg")
    pid = Process.spawn(env, *cmd, chdir: chdir, in: File::NULL, out: log.path, err: %i[child out],
                                   pgroup: true, unsetenv_others: clean_env)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    status = nil
    until (status = Process.waitpid2(pid, Process::WNOHANG)&.last)
      if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
        raise Timeout::Error, "`#{cmd.join(" ")}` ran over #{timeout}s:\n#{File.read(log.path)}"
      end

      sleep 0.2
    end
    output = File.read(log.path)
    expect(status.success?).to be(true), "`#{cmd.join(" ")}` failed (#{status.inspect}):\n#{output}"
    output
  ensure
    kill_group(pid) if pid && !status
    log&.close!
  end

  def kill_group(pid)
    Process.kill(:KILL, -pid)
    Process.wait(pid)
  rescue Errno::ESRCH, Errno::ECHILD
    nil
  end

  it "builds, installs into a fresh GEM_HOME and loads without the checkout" do
    Dir.mktmpdir("process_shared-pkg") do |tmp|
      gem_file = File.join(tmp, "process_shared.gem")
      gem_home = File.join(tmp, "gem_home")
      no_ruby_env = { "RUBYOPT" => nil, "RUBYLIB" => nil, "BUNDLE_GEMFILE" => nil, "BUNDLER_SETUP" => nil }

      run!(no_ruby_env, Gem.ruby, "-S", "gem", "build", "process_shared.gemspec", "--output", gem_file,
           chdir: root, timeout: 120)
      gem_spec = Gem::Package.new(gem_file).spec
      files = gem_spec.files
      expect(files).to include("Cargo.lock", "Cargo.toml", "ext/process_shared/extconf.rb",
                               "ext/process_shared/src/lib.rs", "ext/process_shared_core/src/lib.rs",
                               "lib/process_shared.rb", "exe/process_shared", "sig/process_shared.rbs")
      expect(gem_spec.executables).to eq(["process_shared"])
      expect(files.grep(%r{(\A|/)target/|\.so\z})).to be_empty

      install_env = no_ruby_env.merge("CARGO_NET_OFFLINE" => "true", "CARGO_TARGET_DIR" => File.join(root, "target"),
                                      "GEM_HOME" => gem_home, "GEM_PATH" => gem_home)
      run!(install_env, Gem.ruby, "-S", "gem", "install", "--local", "--no-document", "--install-dir", gem_home,
           gem_file, chdir: tmp, timeout: 25 * 60)

      clean_env = { "PATH" => ENV.fetch("PATH"), "HOME" => Dir.home, "GEM_HOME" => gem_home, "GEM_PATH" => gem_home }
      script = <<~RUBY
        require "process_shared"
        puts ProcessShared::Mutex.new.synchronize { 42 }
        puts $LOADED_FEATURES.grep(%r{/process_shared[.]so\\z})
      RUBY
      output = run!(clean_env, Gem.ruby, "-e", script, chdir: tmp, timeout: 60, clean_env: true)
      answer, loaded = output.lines.map(&:strip).last(2)
      expect(answer).to eq("42")
      expect(loaded).to start_with(gem_home)
      # The installed command runs from the gem (its wrapper in GEM_HOME/bin).
      listing = run!(clean_env, Gem.ruby, File.join(gem_home, "bin", "process_shared"), "list", "--json",
                     chdir: tmp, timeout: 60, clean_env: true)
      expect(JSON.parse(listing.lines.last)).to include("version" => 1, "objects" => an_instance_of(Array))
    end
  end
end
