# frozen_string_literal: true

require "open3"
require_relative "spec_helper"

# Each error the gem defines subclasses what the standard library raises for the same misuse and includes
# the tag module ProcessShared::Error; errors.rb (Ruby) and errors.rs (the extension, which defines them
# when loaded on its own) must agree.
RSpec.describe "ProcessShared's errors" do
  hierarchy = {
    "ProcessError" => "ThreadError",
    "ClosedError" => "IOError",
    "ClosedQueueError" => "ClosedQueueError",
    "IncompatibleError" => "TypeError",
    "InternalError" => "RuntimeError",
    "OwnerDeadError" => "StandardError"
  }
  # Defined by lib/ only (the PostgreSQL backend raises it; the extension never does).
  ruby_only = { "LockLostError" => "StandardError" }

  it "is a tag module included by every error the gem defines" do
    expect(ProcessShared::Error).to be_an_instance_of(Module)
    defined = ProcessShared.constants.map { |c| ProcessShared.const_get(c) }
                           .select { |c| c.is_a?(Class) && c < Exception }
    expect(defined.map { |c| c.name.delete_prefix("ProcessShared::") }).to match_array(hierarchy.keys + ruby_only.keys)
    expect(defined).to all(satisfy { |c| c < ProcessShared::Error })
  end

  hierarchy.merge(ruby_only).each do |name, stdlib|
    it "#{name} < ::#{stdlib}" do
      expect(ProcessShared.const_get(name).superclass).to be(Object.const_get(stdlib))
    end
  end

  it "OwnerDeadError is not a ThreadError (a ThreadError rescue written for Thread::Mutex must not swallow it)" do
    expect(ProcessShared::OwnerDeadError.ancestors).not_to include(ThreadError)
  end

  it "is the same hierarchy when the extension is loaded without lib/process_shared/errors.rb" do
    script = <<~RUBY
      require "process_shared/process_shared"
      puts ProcessShared::Error.class
      #{hierarchy.keys.inspect}.each do |n|
        c = ProcessShared.const_get(n)
        puts [n, c.superclass, c.include?(ProcessShared::Error)].join(" ")
      end
    RUBY
    out, err, status = Open3.capture3(RbConfig.ruby, "-I", File.expand_path("../lib", __dir__), "-e", script)
    expect(status).to be_success, err
    expected = ["Module"] + hierarchy.map { |n, s| "#{n} #{s} true" }
    expect(out.lines(chomp: true)).to eq(expected)
  end
end
