variable "name" {
  description = "Name prefix for every resource (one fleet per name)."
  type        = string
  default     = "loadgen"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2-31 characters of lowercase letters, digits and dashes, starting with a letter."
  }
}

variable "region" {
  description = "AWS region to run the fleet in (pick the one closest to the target)."
  type        = string
  default     = "eu-west-1"
}

variable "tags" {
  description = "Extra tags applied to every resource."
  type        = map(string)
  default     = {}
}

# --- Network -----------------------------------------------------------------

variable "vpc_id" {
  description = "Existing VPC to use. Leave empty (with subnet_id empty) to create a new VPC with one public subnet."
  type        = string
  default     = ""
}

variable "subnet_id" {
  description = "Existing subnet (inside vpc_id) for the master and the workers. Required when vpc_id is set."
  type        = string
  default     = ""
}

variable "vpc_cidr" {
  description = "CIDR of the VPC created when vpc_id is empty."
  type        = string
  default     = "10.40.0.0/16"
}

variable "subnet_cidr" {
  description = "CIDR of the public subnet created when vpc_id is empty."
  type        = string
  default     = "10.40.1.0/24"
}

variable "availability_zone" {
  description = "Availability zone of the created subnet (empty: the region's first)."
  type        = string
  default     = ""
}

variable "assign_public_ips" {
  description = "Give the master and the workers public IPs (needed for SSH from the admin CIDR and for egress without a NAT gateway)."
  type        = bool
  default     = true
}

variable "admin_cidr" {
  description = "CIDR allowed to SSH to every instance and to reach the master's web port, e.g. \"203.0.113.7/32\". Never 0.0.0.0/0."
  type        = string

  validation {
    condition     = can(cidrhost(var.admin_cidr, 0)) && var.admin_cidr != "0.0.0.0/0"
    error_message = "admin_cidr must be a valid CIDR and must not be 0.0.0.0/0."
  }
}

variable "target_egress_cidrs" {
  description = "CIDRs the instances may open connections to (the target, package mirrors). Default: anywhere."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "target_egress_ipv6_cidrs" {
  description = "IPv6 CIDRs the instances may open connections to (empty list: none)."
  type        = list(string)
  default     = ["::/0"]
}

# --- Instances ---------------------------------------------------------------

variable "key_name" {
  description = "Name of an existing EC2 key pair used for SSH (and by Ansible)."
  type        = string
}

variable "ami_id" {
  description = "AMI for every instance. Empty: the latest Ubuntu 24.04 LTS amd64 image from Canonical."
  type        = string
  default     = ""
}

variable "ssh_user" {
  description = "Login user of the AMI, written into the Ansible inventory."
  type        = string
  default     = "ubuntu"
}

variable "master_instance_type" {
  description = "Instance type of the master (it aggregates statistics; CPU matters little, network a bit)."
  type        = string
  default     = "c5n.large"
}

variable "worker_instance_type" {
  description = "Instance type of each worker. c5n gives the most network per vCPU."
  type        = string
  default     = "c5n.xlarge"
}

variable "worker_count" {
  description = "Number of workers (instances, or desired capacity of the autoscaling group)."
  type        = number
  default     = 5

  validation {
    condition     = var.worker_count >= 0 && var.worker_count <= 500
    error_message = "worker_count must be between 0 and 500."
  }
}

variable "worker_mode" {
  description = "\"instances\": N aws_instance resources (stable IPs, simplest). \"asg\": an autoscaling group from a launch template (fast resize with worker_count)."
  type        = string
  default     = "instances"

  validation {
    condition     = contains(["instances", "asg"], var.worker_mode)
    error_message = "worker_mode must be \"instances\" or \"asg\"."
  }
}

variable "root_volume_size" {
  description = "Root volume size in GiB for every instance."
  type        = number
  default     = 20
}

variable "zmq_port" {
  description = "Master's ZeroMQ port (loadgen master --bind 0.0.0.0:PORT)."
  type        = number
  default     = 5557
}

variable "web_port" {
  description = "Master's web UI port, reachable from admin_cidr only. 0 disables the rule."
  type        = number
  default     = 8089
}

# --- Outputs -----------------------------------------------------------------

variable "inventory_path" {
  description = "Where to write the rendered Ansible inventory. Empty: ../ansible/inventory/terraform.ini next to this module."
  type        = string
  default     = ""
}

variable "ssh_private_key_file" {
  description = "Private key file written into the inventory as ansible_ssh_private_key_file (empty: not written)."
  type        = string
  default     = ""
}
