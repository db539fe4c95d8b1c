data "aws_ami" "ubuntu" {
  count = var.ami_id == "" ? 1 : 0

  most_recent = true
  owners      = ["099720109477"] # Canonical

  filter {
    name   = "name"
    values = ["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"]
  }

  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }
}

locals {
  ami_id  = var.ami_id != "" ? var.ami_id : data.aws_ami.ubuntu[0].id
  use_asg = var.worker_mode == "asg"
}

# --- Master ------------------------------------------------------------------

resource "aws_instance" "master" {
  ami                         = local.ami_id
  instance_type               = var.master_instance_type
  key_name                    = var.key_name
  subnet_id                   = local.subnet_id
  vpc_security_group_ids      = [aws_security_group.master.id]
  associate_public_ip_address = var.assign_public_ips

  metadata_options {
    http_tokens = "required"
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = var.root_volume_size
    encrypted   = true
  }

  tags = {
    Name        = "${var.name}-master"
    LoadgenRole = "master"
  }

  lifecycle {
    ignore_changes = [ami]

    precondition {
      condition     = (var.vpc_id == "") == (var.subnet_id == "")
      error_message = "Set both vpc_id and subnet_id (existing network) or neither (new VPC)."
    }
  }
}

# --- Workers: plain instances (worker_mode = "instances") ---------------------

resource "aws_instance" "worker" {
  count = local.use_asg ? 0 : var.worker_count

  ami                         = local.ami_id
  instance_type               = var.worker_instance_type
  key_name                    = var.key_name
  subnet_id                   = local.subnet_id
  vpc_security_group_ids      = [aws_security_group.worker.id]
  associate_public_ip_address = var.assign_public_ips

  metadata_options {
    http_tokens = "required"
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = var.root_volume_size
    encrypted   = true
  }

  tags = {
    Name        = format("%s-worker-%02d", var.name, count.index + 1)
    LoadgenRole = "worker"
  }

  lifecycle {
    ignore_changes = [ami]
  }
}

# --- Workers: autoscaling group (worker_mode = "asg") -------------------------

resource "aws_launch_template" "worker" {
  count = local.use_asg ? 1 : 0

  name_prefix   = "${var.name}-worker-"
  image_id      = local.ami_id
  instance_type = var.worker_instance_type
  key_name      = var.key_name

  network_interfaces {
    associate_public_ip_address = var.assign_public_ips
    security_groups             = [aws_security_group.worker.id]
    delete_on_termination       = true
  }

  metadata_options {
    http_tokens = "required"
  }

  block_device_mappings {
    device_name = "/dev/sda1"

    ebs {
      volume_type           = "gp3"
      volume_size           = var.root_volume_size
      encrypted             = true
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"

    tags = {
      Name        = "${var.name}-worker"
      LoadgenRole = "worker"
    }
  }
}

resource "aws_autoscaling_group" "worker" {
  count = local.use_asg ? 1 : 0

  name                      = "${var.name}-workers"
  min_size                  = var.worker_count
  max_size                  = var.worker_count
  desired_capacity          = var.worker_count
  vpc_zone_identifier       = [local.subnet_id]
  health_check_type         = "EC2"
  wait_for_capacity_timeout = "10m"

  launch_template {
    id      = aws_launch_template.worker[0].id
    version = aws_launch_template.worker[0].latest_version
  }

  tag {
    key                 = "LoadgenFleet"
    value               = var.name
    propagate_at_launch = true
  }
}

# The ASG's instances, read after the group reached its capacity (wait_for_capacity_timeout).
data "aws_instances" "asg_workers" {
  count = local.use_asg ? 1 : 0

  instance_tags = {
    "aws:autoscaling:groupName" = aws_autoscaling_group.worker[0].name
  }

  instance_state_names = ["running"]

  depends_on = [aws_autoscaling_group.worker]
}

locals {
  worker_private_ips = local.use_asg ? data.aws_instances.asg_workers[0].private_ips : aws_instance.worker[*].private_ip
  worker_public_ips  = local.use_asg ? data.aws_instances.asg_workers[0].public_ips : aws_instance.worker[*].public_ip
  worker_ids         = local.use_asg ? data.aws_instances.asg_workers[0].ids : aws_instance.worker[*].id
}
